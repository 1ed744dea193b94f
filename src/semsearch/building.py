"""The build loop: corpus -> embedders -> (checkpoint, store, index), with the stages overlapped.

The main thread reads the corpus and feeds the embedders (processes or threads, see
``embedding``); a writer thread checkpoints each embedded batch, commits it to the SQLite store
and adds it to the vector index while the next batches are embedded. Queues between the stages
are short, so memory is bounded by a few batches whatever the corpus size, and a slow stage
slows the reader down instead of piling batches up.

Every completed batch is on disk (see ``checkpoint``), so an interrupted build resumes from
its last completed batch: the index is refilled from the checkpoint, the corpus is read past
the documents already stored, and embedding goes on from there.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from semsearch.backends import VectorIndex
from semsearch.checkpoint import VECTORS_CHECKPOINT, BuildWorkspace, IndexSnapshots, VectorCheckpoint
from semsearch.corpus import Corpus, ReadStats
from semsearch.documents import Document
from semsearch.embedding import batched, make_embedder, progress_bar
from semsearch.encoders import Encoder
from semsearch.errors import BuildInterrupted
from semsearch.manifest import DOCUMENTS_FILE, VECTORS_FILE
from semsearch.store import DocumentStore
from semsearch.vector_file import VectorFileWriter

# How often the writer saves the index, so that a resume after a crash refills only what came after.
SNAPSHOT_SECONDS = 300.0
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


class EmbeddedSource(Protocol):
    """Where a build gets its documents and their vectors: a corpus it embeds, or files embedded elsewhere."""

    description: str  # the manifest's "source"
    activity: str  # what the progress bar says it is doing
    stats: ReadStats | None  # what reading skipped, once read

    def plan(self) -> dict[str, Any]:
        """What is read, for build.json: a resumed build must read the same."""

    def count_rows(self) -> int | None:
        """An upper bound on the documents, for the progress bar."""

    def batches(self, skip: int) -> Iterator[tuple[list[Document], np.ndarray]]:
        """Every batch after the first ``skip`` documents, with its vectors, in the same order every time."""


def file_identity(path: Path) -> dict[str, Any]:
    """A file as build.json records it: a changed file is a different build."""
    status = path.stat()
    return {"path": str(path.resolve()), "size": status.st_size, "modified_ns": status.st_mtime_ns}


class CorpusSource:
    """A corpus file, embedded on every core (see ``embedding``)."""

    activity = "embedding"

    def __init__(self, corpus: Corpus, encoder: Encoder, *, batch_size: int, parallel: str | None = None, workers: int | None = None) -> None:
        self.corpus = corpus
        self.encoder = encoder
        self.batch_size = batch_size
        self.parallel = parallel
        self.workers = workers
        self.description = str(corpus.path)

    @property
    def stats(self) -> ReadStats:
        return self.corpus.stats

    def plan(self) -> dict[str, Any]:
        corpus = self.corpus
        return {
            "source": file_identity(corpus.path),
            "corpus": {
                "format": corpus.format, "text_field": corpus.text_field, "date_field": corpus.date_field,
                "id_field": corpus.id_field, "skip_bad_rows": corpus.skip_bad_rows, "limit": corpus.limit,
                "dedupe": corpus.dedupe,
            },
        }

    def count_rows(self) -> int | None:
        return self.corpus.count_rows()

    def batches(self, skip: int) -> Iterator[tuple[list[Document], np.ndarray]]:
        documents = iter(self.corpus)
        for _ in islice(documents, skip):  # stored already; read past them
            pass
        embedder = make_embedder(self.encoder, self.parallel, self.workers)
        try:
            yield from embedder.map(batched(documents, self.batch_size))
        finally:
            embedder.close()


def build_plan(source: EmbeddedSource, encoder: Encoder, index: VectorIndex, reducer: dict[str, Any] | None) -> dict[str, Any]:
    """What a build makes from what: a resumed build must be the same one."""
    return {**source.plan(), "encoder": encoder.spec(), "backend": {"name": index.name, "params": index.params}, "reducer": reducer}


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (``kill``, a container stopping) ends a build as cleanly as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _open_store(workspace: BuildWorkspace) -> DocumentStore:
    """The store of the interrupted build, or a new one if it has none worth keeping."""
    path = workspace.path / DOCUMENTS_FILE
    if workspace.resumed and path.is_file():
        try:
            store = DocumentStore.open(path, read_only=False)
            len(store)
            return store
        except Exception:  # cut off while its schema was being written: nothing was committed
            pass
    for name in (DOCUMENTS_FILE, f"{DOCUMENTS_FILE}-wal", f"{DOCUMENTS_FILE}-shm", VECTORS_CHECKPOINT):
        (workspace.path / name).unlink(missing_ok=True)
    return DocumentStore.create(path, journaled=True)


def write_collection_files(
    workspace: BuildWorkspace, source: EmbeddedSource, index: VectorIndex, dim: int, *, batch_size: int, progress: bool
) -> int:
    """Write the source's documents and vectors into the workspace: documents.sqlite, the index
    and, if the index needs it, vectors.npy.

    Continues an interrupted build where ``workspace.resumed``. Returns the number of documents.
    Ctrl-C or SIGTERM raise ``BuildInterrupted`` once every completely embedded batch is saved.
    """
    store = _open_store(workspace)
    checkpoint = VectorCheckpoint(workspace.path / VECTORS_CHECKPOINT, dim)
    snapshots = IndexSnapshots(workspace.path, index, SNAPSHOT_SECONDS)
    bar = None
    try:
        with sigterm_interrupts():
            try:
                done = workspace.resumed_at = len(store)
                checkpoint.truncate(done)
                bar = progress_bar(source.count_rows() if progress else None, progress, initial=done, activity=source.activity)
                index, indexed = snapshots.restore(index, done)
                _refill(index, checkpoint, indexed, done, batch_size)
                _write_batches(source.batches(done), index, store, checkpoint, snapshots, bar)
            except KeyboardInterrupt:
                saved = len(store)
                if saved > snapshots.rows and len(index) == saved:
                    snapshots.save(index, saved)  # so that --resume need not refill the whole index
                raise BuildInterrupted(
                    f"{saved:,} documents are saved in {workspace.path}; run the same command with --resume to go on from there"
                ) from None
        store.finish()
        index.save(workspace.path)
        if not index.keeps_vectors:
            _write_vector_file(workspace.path / VECTORS_FILE, checkpoint, dim, batch_size)
        return len(store)
    finally:
        if bar is not None:
            bar.close()
        store.close()
        checkpoint.close()


def _write_batches(
    batches: Iterator[tuple[list[Document], np.ndarray]], index: VectorIndex, store: DocumentStore, checkpoint: VectorCheckpoint,
    snapshots: IndexSnapshots, bar: Any,
) -> None:
    """Checkpoint, store and index each batch in the writer thread while the source makes the next."""

    def write(batch: list[Document], vectors: np.ndarray) -> None:
        ids = np.fromiter((document.id for document in batch), dtype=np.int64, count=len(batch))
        checkpoint.append(ids, vectors)  # on disk before the documents are committed: see checkpoint.py
        store.add(batch)
        index.add(ids, vectors)
        bar.update(len(batch))
        if snapshots.due():
            snapshots.save(index, checkpoint.rows)

    writer = BackgroundWriter(write)
    try:
        with closing(batches):  # type: ignore[type-var]  # a generator: closing it stops the embedders
            for batch, vectors in batches:
                writer.put(batch, vectors)
    finally:
        writer.close()


def _refill(index: VectorIndex, checkpoint: VectorCheckpoint, start_row: int, rows: int, batch_size: int) -> None:
    """Put the checkpointed vectors from ``start_row`` on back into the index, in the order they were first added."""
    for start in range(start_row, rows, batch_size):
        ids, vectors = checkpoint.read(start, min(rows, start + batch_size))
        index.add(ids, vectors)


def _write_vector_file(path: Path, checkpoint: VectorCheckpoint, dim: int, batch_size: int) -> None:
    """vectors.npy (float16) and its ids, streamed from the checkpoint, for indexes that do not keep vectors."""
    writer = VectorFileWriter(path, dim)
    try:
        for start in range(0, checkpoint.rows, batch_size):
            ids, vectors = checkpoint.read(start, min(checkpoint.rows, start + batch_size))
            writer.append(vectors, ids)
    finally:
        writer.close()
