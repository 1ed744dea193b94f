"""Change a built collection in place: add, replace and remove documents without a full rebuild.

An update never touches a file that readers may have open. It writes a new generation
directory (``generation-N/``) holding a changed copy of the document store and of the index,
then switches to it by replacing manifest.json with ``os.replace``; the manifest names the
files, so a reader sees the old generation or the new one, never a mix. Files the new
manifest no longer names are deleted after the switch (open files stay readable on POSIX),
and whatever a crashed update left behind is deleted by the next one.

The caller (``Collection``) holds the update lock and hands over the manifest it opened and
checked, so an update reads no manifest and hashes no file of its own; it loads the index
once, and hands the changed index back for the collection to go on searching with.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends import VectorIndex
from semsearch.backends.factory import empty_like, open_index
from semsearch.backends.reachability import Orphans, checked, find_orphans
from semsearch.documents import MAX_DOCUMENT_ID, Document, is_document_id
from semsearch.encoders import Encoder
from semsearch.encoders.parallel import DEFAULT_BATCH_SIZE, embed_documents
from semsearch.errors import CollectionError
from semsearch.storage.atomic import fsync_directory, sync_files
from semsearch.storage.layout import (
    DOCUMENTS_FILE,
    VECTORS_FILE,
    data_directory,
    describe_files,
    generation_directory,
    generation_of,
    next_manifest,
    remove_unreferenced,
    write_manifest,
)
from semsearch.storage.store import DocumentStore
from semsearch.storage.vector_file import StoredVectors, VectorFileWriter, ids_path

# Vectors moved at once when an update copies or rebuilds: bounds memory to about this many rows.
COPY_CHUNK = 20_000
_ADDED_FILE = ".added.npy"
_DONE = object()  # the end of an iterator, for StageClock.each


@dataclass(frozen=True)
class UpdateRequest:
    """What one update asks for, handed whole from the facade down to the code that writes the
    generation, so that its options are listed in one place and a new one is added once."""

    documents: Iterable[Document] = ()
    remove_ids: Iterable[int] = ()
    replace: bool = True
    rebuild: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    progress: bool = False


@dataclass
class UpdateStats:
    """What an update did, for the CLI to report."""

    added: int = 0
    replaced: int = 0
    removed: int = 0
    not_found: tuple[int, ...] = ()
    rebuilt: bool = False
    count: int = 0
    # Seconds spent in each stage (see StageClock): what an update's time is made of.
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateResult:
    """A finished update: what it did, the manifest it switched to and the changed index, in memory."""

    stats: UpdateStats
    manifest: dict[str, Any]
    index: VectorIndex


class StageClock:
    """Seconds per stage of one update, summed over its batches, since embedding and writing take turns.

    An update rewrites the whole collection whatever the size of the change, so its time is worth
    seeing split: what the change costs (embedding) against what the collection's size costs.
    Stages: load index, copy store, embed (reading included), store (SQLite changes), index (adds
    and removals in place), vectors (vectors.npy, and the new index of a rebuild), save index,
    sync and switch (fsync, sha256 of the new files, the manifest), delete old files.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def each(self, name: str, items: Iterable[Any]) -> Iterator[Any]:
        """The items, the time taken to make each one (not the caller's time between them) counted as ``name``."""
        iterator = iter(items)
        while True:
            with self.stage(name):
                item = next(iterator, _DONE)
            if item is _DONE:
                return
            yield item


def apply_update(path: Path, manifest: dict[str, Any], encoder: Encoder, request: UpdateRequest) -> UpdateResult:
    """Remove ``request.remove_ids``, then add ``request.documents`` (replacing those whose id
    exists when ``request.replace``), as a new generation of the collection at ``path``.

    ``manifest`` is the collection's current one, checked by the caller, who holds the update lock.
    Any error before the switch leaves the collection exactly as it was.
    """
    clock = StageClock()
    remove_unreferenced(path, manifest)
    generation = generation_of(manifest) + 1
    new = generation_directory(path, generation)
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    try:
        stats, index = _write_generation(data_directory(path, manifest), new, manifest, encoder, request, clock)
        with clock.stage("sync and switch"):
            names = sync_files(new)
            updated = next_manifest(manifest, generation=generation, count=stats.count,
                                    files=describe_files(path, [f"{new.name}/{name}" for name in names]))
            write_manifest(path, updated)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    # Switched: what follows only tidies up, and the next update retries whatever fails here.
    with clock.stage("delete old files"):
        try:
            fsync_directory(path)
            remove_unreferenced(path, updated)
        except OSError:
            pass
    index.files_moved_to(new)
    stats.seconds = clock.seconds
    return UpdateResult(stats, updated, index)


def _write_generation(old: Path, new: Path, manifest: dict[str, Any], encoder: Encoder, request: UpdateRequest,
                      clock: StageClock) -> tuple[UpdateStats, VectorIndex]:
    """The generation written in steps: removals, additions, the vector file (and a rebuilt index), the index."""
    generation = NewGeneration(old, new, manifest, request, clock)
    try:
        generation.remove(request.remove_ids)
        generation.add(embed_documents(request.documents, encoder, batch_size=request.batch_size, progress=request.progress))
        generation.rewrite_vectors()
        return generation.save()
    except ValueError as error:  # a backend refusing ids or vectors
        hint = "" if request.rebuild else "; pass --rebuild (rebuild=True) to rebuild the index from the stored vectors"
        raise CollectionError(f"{new.parent}: the update cannot be applied: {error}{hint}") from None
    finally:
        generation.close()


class NewGeneration:
    """The next generation's store, index and vectors, changed one step at a time.

    In place (the default) removals and additions go straight into the loaded index. With
    ``rebuild`` (a backend that cannot change a built index), or when the collection keeps a
    vectors.npy, the added vectors are also kept aside so that ``rewrite_vectors`` can write the
    survivors' and the new ones into a fresh vectors.npy and, for a rebuild, a fresh index.
    """

    def __init__(self, old: Path, new: Path, manifest: dict[str, Any], request: UpdateRequest, clock: StageClock) -> None:
        self.new = new
        self.request = request
        self.clock = clock
        self.dim = int(manifest["encoder"]["dim"])
        self.in_place = not request.rebuild
        self.added_file: VectorFileWriter | None = None
        with clock.stage("load index"):
            self.index = open_index(old, manifest, mmap=False)
        if not self.index.supports_updates and not request.rebuild:
            raise CollectionError(
                f"the {self.index.name} backend cannot add to or remove from a built index; "
                "pass --rebuild (rebuild=True) to rebuild it from the stored vectors, without embedding again"
            )
        self.orphans = Orphans.load(old, self.index.dim) if checked(self.index) else None
        self.new_orphans: list[tuple[np.ndarray, np.ndarray]] = []
        self.stored = StoredVectors(old / VECTORS_FILE) if (old / VECTORS_FILE).is_file() else None
        with clock.stage("copy store"):
            self.store = DocumentStore.open_copy(old / DOCUMENTS_FILE, new / DOCUMENTS_FILE)
        self.keeps_added = self.stored is not None or request.rebuild
        self.old_ids = self.store.ids() if self.keeps_added else None
        if self.keeps_added:
            self.added_file = VectorFileWriter(new / _ADDED_FILE, self.dim)
        self.stats = UpdateStats(rebuilt=request.rebuild)
        self.gone: list[int] = []
        self.replaced: list[int] = []
        self.seen: set[int] = set()

    def remove(self, ids: Iterable[int]) -> None:
        requested = sorted({int(i) for i in ids})
        with self.clock.stage("store"):
            self.gone = self.store.existing([i for i in requested if is_document_id(i)])
            self.store.remove(self.gone)
        self.stats.removed = len(self.gone)
        self.stats.not_found = tuple(sorted(set(requested) - set(self.gone)))
        if self.in_place and self.gone:
            with self.clock.stage("index"):
                self.index.remove(np.asarray(self.gone, dtype=np.int64))

    def add(self, embedded: Iterable[tuple[list[Document], np.ndarray]]) -> None:
        for batch, vectors in self.clock.each("embed", embedded):
            ids = self._checked_ids(batch)
            with self.clock.stage("store"):
                existing = self.store.existing(ids)
                if existing and not self.request.replace:
                    raise CollectionError(
                        f"document id {existing[0]} is in the collection already; upsert (semsearch add) replaces documents"
                    )
                self.store.remove(existing)
                self.store.add(batch)
            self.replaced.extend(existing)
            if self.in_place:
                with self.clock.stage("index"):
                    if existing:
                        self.index.remove(np.asarray(existing, dtype=np.int64))
                    self.index.add(ids, vectors)
                    if self.orphans is not None:  # the added documents the index cannot find
                        self.new_orphans.append(find_orphans(self.index, [(ids, vectors)]))
            if self.added_file is not None:
                with self.clock.stage("vectors"):
                    self.added_file.append(vectors, ids)
        self.stats.replaced = len(self.replaced)
        self.stats.added = len(self.seen) - len(self.replaced)

    def _checked_ids(self, batch: list[Document]) -> np.ndarray:
        for document in batch:
            if not isinstance(document.id, int) or not is_document_id(document.id):
                raise CollectionError(f"document id {document.id!r} is not an integer from 0 to {MAX_DOCUMENT_ID}")
        ids = np.fromiter((document.id for document in batch), dtype=np.int64, count=len(batch))
        for document_id in ids.tolist():
            if document_id in self.seen:
                raise CollectionError(f"document id {document_id} appears twice in the documents to add")
            self.seen.add(document_id)
        return ids

    def rewrite_vectors(self) -> None:
        """The survivors' vectors and the added ones, into a new vectors.npy and (rebuild) a new index."""
        if self.added_file is None:
            return
        with self.clock.stage("vectors"):
            self.added_file.close()
            assert self.old_ids is not None
            survivors = self.old_ids[~np.isin(self.old_ids, np.asarray(self.gone + self.replaced, dtype=np.int64))]
            added = StoredVectors(self.new / _ADDED_FILE)
            rebuilt = empty_like(self.index, self.dim) if self.request.rebuild else None
            writer = VectorFileWriter(self.new / VECTORS_FILE, self.dim) if self.stored is not None else None
            chunks = chain(_vector_chunks(survivors, self.stored, self.index), _vector_chunks(added.ids, added, None))
            for chunk_ids, chunk_vectors in chunks:
                if rebuilt is not None:
                    rebuilt.add(chunk_ids, chunk_vectors)
                if writer is not None:
                    writer.append(chunk_vectors, chunk_ids)
            if writer is not None:
                writer.close()
            if rebuilt is not None:
                self.index = rebuilt
                if self.orphans is not None:  # a new index: every document checked again
                    self.orphans = Orphans.empty(self.index.dim)
                    self.new_orphans = [find_orphans(rebuilt, chain(_vector_chunks(survivors, self.stored, rebuilt if self.stored is None else None),
                                                                     _vector_chunks(added.ids, added, None)))]
            del added
            (self.new / _ADDED_FILE).unlink()
            ids_path(self.new / _ADDED_FILE).unlink()

    def save(self) -> tuple[UpdateStats, VectorIndex]:
        with self.clock.stage("save index"):
            self.index.save(self.new)
            if self.orphans is not None:
                added_ids = [ids for ids, _ in self.new_orphans] or [np.zeros(0, dtype=np.int64)]
                added_vectors = [vectors for _, vectors in self.new_orphans] or [np.zeros((0, self.index.dim), dtype=np.float32)]
                orphans = self.orphans.changed(self.gone + self.replaced, np.concatenate(added_ids), np.concatenate(added_vectors))
                if len(orphans):
                    orphans.save(self.new)
        self.stats.count = len(self.store)
        return self.stats, self.index

    def close(self) -> None:
        self.store.close()
        if self.added_file is not None:
            self.added_file.close()


def _vector_chunks(ids: np.ndarray, stored: StoredVectors | None, index: VectorIndex | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The full vectors of ``ids`` in bounded chunks, from a vectors file or from an index that keeps them."""
    for start in range(0, len(ids), COPY_CHUNK):
        chunk = ids[start : start + COPY_CHUNK]
        if stored is not None:
            yield chunk, stored.vectors(chunk)
        else:
            assert index is not None
            yield chunk, index.vectors(chunk)
