"""The build loop: corpus -> embedders -> (store, index, vector file), with the stages overlapped.

The main thread reads the corpus and feeds the embedders (processes or threads, see
``embedding``); a writer thread adds each embedded batch to the SQLite store and the vector
index while the next batches are embedded. Queues between the stages are short, so memory is
bounded by a few batches whatever the corpus size, and a slow stage slows the reader down
instead of piling batches up.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from semsearch.backends import VectorIndex
from semsearch.corpus import Corpus
from semsearch.documents import Document
from semsearch.embedding import batched, make_embedder, progress_bar
from semsearch.encoders import Encoder
from semsearch.manifest import DOCUMENTS_FILE, VECTORS_FILE
from semsearch.store import DocumentStore
from semsearch.vector_file import VectorFileWriter

# Embedded batches waiting for the writer: enough to ride out a slow write, few enough to bound memory.
WRITE_QUEUE_BATCHES = 2

WriteBatch = Callable[[list[Document], np.ndarray], None]


class BackgroundWriter:
    """Runs ``write(batch, vectors)`` in a thread of its own, in order.

    An error in the writer stops the build at the next ``put`` or at ``close``; batches queued
    after it are dropped. ``close`` writes what is queued, so an interrupted build keeps every
    batch that was completely embedded.
    """

    def __init__(self, write: WriteBatch, depth: int = WRITE_QUEUE_BATCHES) -> None:
        self._write = write
        self._queue: queue.Queue[tuple[list[Document], np.ndarray] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="semsearch-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as error:  # handed to the main thread
                    self._error = error

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, batch: list[Document], vectors: np.ndarray) -> None:
        self._raise_error()
        self._queue.put((batch, vectors))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise_error()


def write_collection_files(
    workspace: Path,
    corpus: Corpus,
    encoder: Encoder,
    index: VectorIndex,
    *,
    batch_size: int,
    progress: bool,
    parallel: str | None = None,
    workers: int | None = None,
) -> int:
    """Embed the corpus into ``workspace``: documents.sqlite, the index and, if the backend needs it, vectors.npy.

    Returns the number of documents written.
    """
    store = DocumentStore.create(workspace / DOCUMENTS_FILE)
    vector_file = None if index.keeps_vectors else VectorFileWriter(workspace / VECTORS_FILE, encoder.dim)
    total = corpus.count_rows() if progress else None
    bar = progress_bar(total, progress)

    def write(batch: list[Document], vectors: np.ndarray) -> None:
        ids = np.fromiter((document.id for document in batch), dtype=np.int64, count=len(batch))
        store.add(batch)
        index.add(ids, vectors)
        if vector_file is not None:
            vector_file.append(vectors, ids)
        bar.update(len(batch))

    embedder = make_embedder(encoder, parallel, workers)
    writer = BackgroundWriter(write)
    try:
        try:
            for batch, vectors in embedder.map(batched(corpus, batch_size)):
                writer.put(batch, vectors)
        finally:
            try:
                embedder.close()
            finally:
                writer.close()
        store.finish()
        index.save(workspace)
        return len(store)
    finally:
        bar.close()
        store.close()
        if vector_file is not None:
            vector_file.close()
