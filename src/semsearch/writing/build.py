"""The build loop, in two stages: corpus -> embedders -> (checkpoint, store), then checkpoint -> index.

Stage one, embedding: the main thread reads the corpus and feeds the embedders (processes or
threads, see ``embedding``); a writer thread checkpoints each embedded batch and commits its
documents to the SQLite store while the next batches are embedded. Queues between them are
short, so memory is bounded by a few batches whatever the corpus size, and a slow stage slows
the reader down instead of piling batches up.

Stage two, indexing: the vector index is filled from the checkpoint in large slices, with
every core. The index is not filled while embedding because both are CPU-bound: on two cores
they only took turns, each slowing the other, and an HNSW insert grows dearer as the graph
grows, so the embedding rate fell with the corpus (BENCHMARKS.md, "Local embedding").

Every completed batch is on disk (see ``checkpoint``), so an interrupted build resumes from
its last completed batch: the corpus is read past the documents already stored, embedding goes
on from there, and the index is loaded from its last snapshot and filled from the checkpoint past it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from itertools import islice
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from semsearch.backends import VectorIndex
from semsearch.backends.reachability import Orphans, checked, find_orphans
from semsearch.writing.background import BackgroundWriter, WriteBatch  # noqa: F401 - WriteBatch: importable from here
from semsearch.writing.checkpoint import VECTORS_CHECKPOINT, BuildWorkspace, IndexSnapshots, VectorCheckpoint
from semsearch.sources.corpus import Corpus, ReadStats
from semsearch.documents import Document, check_id_kind
from semsearch.encoders.parallel import embed_documents, progress_bar
from semsearch.encoders import Encoder
from semsearch.errors import BuildInterrupted, CollectionError, SemsearchError
from semsearch.backends.factory import new_index
from semsearch.storage.atomic import replace_directory
from semsearch.storage.layout import (
    DOCUMENTS_FILE,
    VECTORS_FILE,
    describe_files,
    index_entries,
    is_collection,
    new_manifest,
    update_lock,
    write_manifest,
)
from semsearch.storage.verified import file_identity
from semsearch.storage.store import DocumentStore
from semsearch.storage.vector_file import VectorFileWriter

# How often the index is saved while it is filled, so that a resume after a crash refills only what came after.
SNAPSHOT_SECONDS = 300.0
# Vectors per index add while indexing: large enough for the index's threads to share the work,
# small enough to hold (40 MB of float32) and to show progress.
INDEX_SLICE = 20_000
# Each stage's documents and seconds, as a record with ``stage``, ``documents`` and ``seconds``
# attributes: what a build's progress bars showed, for logs and benchmarks.
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOptions:
    """How a build indexes and writes, whatever its vectors come from, passed along whole (``build_collection``).
    No defaults here: the public signatures of ``Collection.build*`` are where users see them."""

    backend: str
    backend_params: dict[str, Any] | None
    reduce: str | None
    batch_size: int
    progress: bool
    resume: bool


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
                "id_field": corpus.id_field, "skip_bad_rows": corpus.skip_bad_rows, "limit": corpus.limit, "delimiter": corpus.delimiter,
                "dedupe": corpus.dedupe,
            },
        }

    def count_rows(self) -> int | None:
        return self.corpus.count_rows()

    def batches(self, skip: int) -> Iterator[tuple[list[Document], np.ndarray]]:
        documents = iter(self.corpus)
        for _ in islice(documents, skip):  # stored already; read past them
            pass
        yield from embed_documents(documents, self.encoder, batch_size=self.batch_size, parallel=self.parallel, workers=self.workers)


def build_collection(source: EmbeddedSource, path: Path, encoder: Encoder, options: BuildOptions) -> int:
    """Build the collection at ``path`` from ``source`` in its workspace and swap it into place.

    Returns how many documents an interrupted build had done already (0 unless resumed). A failed
    build removes its workspace; an interrupted one (``KeyboardInterrupt``) keeps it for ``--resume``.
    """
    if "\x00" in str(path):
        raise SemsearchError(f"{str(path)!r}: a path cannot hold a NUL byte")
    if path.exists() and not is_collection(path) and (not path.is_dir() or any(path.iterdir())):
        raise SemsearchError(f"{path} exists and is not a semsearch collection; not overwriting it")
    index = new_index(options.backend, encoder.dim, options.backend_params, options.reduce)
    workspace = BuildWorkspace(path, build_plan(source, encoder, index)).open(resume=options.resume)
    try:
        count = write_collection_files(workspace, source, index, encoder.dim, batch_size=options.batch_size, progress=options.progress)
        workspace.remove_work_files()
        if count == 0:
            raise SemsearchError(f"{source.description}: no documents to index")
        with closing(DocumentStore.open(workspace.path / DOCUMENTS_FILE, schema=2)) as store:
            examples, kind = store.example_texts(), store.id_kind() or "integer"
        files = describe_files(workspace.path, [entry.name for entry in workspace.path.iterdir()])
        write_manifest(workspace.path, new_manifest(encoder, index, count=count, source=source.description, files=files, examples=examples,
                                                    ids=kind))
        # An update of the old collection finishes first, and one waiting starts on the new one.
        with update_lock(path) if is_collection(path) else contextlib.nullcontext():
            replace_directory(workspace.path, path)
        workspace.release()
    except KeyboardInterrupt:  # kept for --resume
        workspace.release()
        raise
    except BaseException:
        workspace.discard()
        raise
    return workspace.resumed_at


def build_plan(source: EmbeddedSource, encoder: Encoder, index: VectorIndex) -> dict[str, Any]:
    """What a build makes from what: a resumed build must be the same one."""
    return {**source.plan(), "encoder": encoder.spec(), **index_entries(index)}


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
            store = DocumentStore.open(path, read_only=False, schema=2)
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
    try:
        with sigterm_interrupts():
            try:
                done = workspace.resumed_at = len(store)
                checkpoint.truncate(done)
                with progress_bar(source.count_rows() if progress else None, progress, initial=done, activity=source.activity) as bar, \
                        _stage_timer(source.activity, lambda: checkpoint.rows - done):
                    _store_batches(source.batches(done), store, checkpoint, bar)
                index, indexed = snapshots.restore(index, checkpoint.rows)  # saved by an interrupted build, if any
                with progress_bar(checkpoint.rows, progress, initial=indexed, activity="indexing") as bar, \
                        _stage_timer("indexing", lambda: len(index) - indexed):
                    for rows in _fill_index(index, checkpoint, indexed):
                        bar.update(rows - bar.n)
                        if snapshots.due():
                            snapshots.save(index, rows)
            except KeyboardInterrupt:
                # The index holds the first len(index) checkpoint rows (they go in in order): saved so
                # that --resume need not refill them. Empty while embedding, so nothing is saved then.
                snapshots.save(index, len(index))
                raise BuildInterrupted(
                    f"{len(store):,} documents are saved in {workspace.path}; run the same command with --resume to go on from there"
                ) from None
        store.finish()
        index.save(workspace.path)
        if checked(index):
            with progress_bar(checkpoint.rows, progress, activity="checking") as bar, _stage_timer("checking", lambda: checkpoint.rows):
                orphans = Orphans(*find_orphans(index, _checked_slices(checkpoint, bar)))
            if len(orphans):
                orphans.save(workspace.path)
            log.info("checking: %d documents the index does not find are scored exactly", len(orphans))
        if not index.keeps_vectors:
            _write_vector_file(workspace.path / VECTORS_FILE, checkpoint, dim, batch_size)
        return len(store)
    finally:
        store.close()
        checkpoint.close()


@contextmanager
def _stage_timer(stage: str, documents: Callable[[], int]) -> Iterator[None]:
    """Log how many documents a completed stage did, and in how long."""
    started = time.perf_counter()
    yield
    seconds, count = time.perf_counter() - started, documents()
    log.info("%s: %d documents in %.1f s", stage, count, seconds, extra={"stage": stage, "documents": count, "seconds": seconds})


def _store_batches(
    batches: Iterator[tuple[list[Document], np.ndarray]], store: DocumentStore, checkpoint: VectorCheckpoint, bar: Any
) -> None:
    """Checkpoint and store each batch in the writer thread while the source makes the next."""

    # Keys (the index's labels) are row numbers: the store and the checkpoint hold the same rows (a resumed
    # build cut the checkpoint to the store's). Ids, integers or strings, are the documents' own, in the store.
    next_key = checkpoint.rows
    kind = store.id_kind()

    def write(batch: list[Document], vectors: np.ndarray) -> None:
        nonlocal next_key, kind
        try:
            kind = check_id_kind(batch, kind)
        except ValueError as error:
            raise CollectionError(str(error)) from None
        keys = np.arange(next_key, next_key + len(batch), dtype=np.int64)
        checkpoint.append(keys, vectors)  # on disk before the documents are committed: see checkpoint.py
        store.add(batch, keys)
        next_key += len(batch)
        bar.update(len(batch))

    writer = BackgroundWriter(write)
    try:
        with closing(batches):  # type: ignore[type-var]  # a generator: closing it stops the embedders
            for batch, vectors in batches:
                writer.put(batch, vectors)
    finally:
        writer.close()


def _fill_index(index: VectorIndex, checkpoint: VectorCheckpoint, start_row: int) -> Iterator[int]:
    """Add the checkpointed vectors from ``start_row`` on to the index, in their order; yield the rows indexed so far."""
    for rows, ids, vectors in checkpoint.slices(start_row, INDEX_SLICE):
        index.add(ids, vectors)
        yield rows


def _checked_slices(checkpoint: VectorCheckpoint, bar: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for rows, ids, vectors in checkpoint.slices(0, INDEX_SLICE):
        yield ids, vectors
        bar.update(rows - bar.n)


def _write_vector_file(path: Path, checkpoint: VectorCheckpoint, dim: int, batch_size: int) -> None:
    """vectors.npy (float16) and its ids, streamed from the checkpoint, for indexes that do not keep vectors."""
    writer = VectorFileWriter(path, dim)
    try:
        for _, ids, vectors in checkpoint.slices(0, batch_size):
            writer.append(vectors, ids)
    finally:
        writer.close()
