"""A new segment, written once: its store, its index and (where the index does not keep them) its vectors.

An update writes one from the documents it adds; a merge writes one from the live rows of the
segments it merges. Either way the segment directory is new, so nothing a reader has open is
touched; the manifest names it only once every file is on disk (``finish`` syncs them).

The vectors wait in a temporary float32 file until ``finish`` knows how many there are: a small
segment is indexed exactly, a larger one with the collection's backend, each filled once, in
large slices, from that file (memory stays bounded however large a merge is).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from semsearch.backends import VectorIndex, create_index
from semsearch.backends.factory import empty_like
from semsearch.backends.reachability import Orphans, checked, find_orphans
from semsearch.documents import Document
from semsearch.errors import CollectionError
from semsearch.storage.atomic import sync_files
from semsearch.storage.layout import DOCUMENTS_FILE, VECTORS_FILE
from semsearch.storage.segments import SegmentEntry
from semsearch.storage.store import DocumentStore
from semsearch.storage.vector_file import VectorFileWriter

# Vectors moved at once from the temporary file into the index (and read back for the orphan check).
SLICE = 20_000
# A segment of at most this many documents is searched exactly: no approximate index is worth building for it
# (nor can every one be: an IVF index needs more vectors to train than a small update brings), and scoring
# 5,000 vectors takes about as long as one search of a graph. Larger ones get the collection's backend.
SMALL_SEGMENT = 5_000
PENDING_FILE = ".pending-vectors.f32"


class SegmentWriter:
    """Batches of (documents, keys, vectors) in ascending key order, into ``directory`` (created here, empty)."""

    def __init__(self, directory: Path, template: VectorIndex, dim: int) -> None:
        shutil.rmtree(directory, ignore_errors=True)  # a crashed update's leftover of the same name
        directory.mkdir()
        self.directory = directory
        self.dim = dim
        self.template = template
        self.store = DocumentStore.create(directory / DOCUMENTS_FILE)
        self._pending = (directory / PENDING_FILE).open("wb")
        self.keys: list[np.ndarray] = []

    def add(self, documents: list[Document], keys: np.ndarray, vectors: np.ndarray) -> None:
        if not len(keys):
            return
        self.store.add(documents, keys.tolist())
        self._pending.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
        self.keys.append(np.asarray(keys, dtype=np.int64))

    def copy(self, store: DocumentStore, skip: np.ndarray, keys: np.ndarray, vectors_of: Callable[[np.ndarray], np.ndarray]) -> None:
        """A merge's rows: ``store``'s documents but the keys in ``skip``, copied inside SQLite, and their vectors
        (``keys``, the rows copied, ascending; ``vectors_of``, their segment's stored vectors), a slice at a time."""
        copied = self.store.copy_from(store, skip)
        if copied != len(keys):
            raise CollectionError(f"{store.path}: {copied:,} rows copied for {len(keys):,} live documents; the collection is damaged")
        for start in range(0, len(keys), SLICE):
            chunk = keys[start : start + SLICE]
            self._pending.write(np.ascontiguousarray(vectors_of(chunk), dtype="<f4").tobytes())
        if len(keys):
            self.keys.append(np.asarray(keys, dtype=np.int64))

    def finish(self, name: str, directory_name: str) -> tuple[SegmentEntry, list[str]]:
        """Index the vectors (and find the documents the index cannot find by their own vectors), sync every file;
        the new entry and the files' names, relative to the segment's directory."""
        self.store.finish()
        self.store.close()
        self._pending.close()
        keys = np.concatenate(self.keys) if self.keys else np.zeros(0, dtype=np.int64)
        pending = self.directory / PENDING_FILE
        vectors = np.memmap(pending, dtype="<f4", mode="r", shape=(len(keys), self.dim)) if len(keys) else np.zeros((0, self.dim), "<f4")
        kind = "exact" if len(keys) <= SMALL_SEGMENT or self.template.name == "exact" and not self.template.reducer_spec() else None
        index = create_index("exact", self.dim) if kind == "exact" else empty_like(self.template, self.dim)
        vector_file = None if index.keeps_vectors else VectorFileWriter(self.directory / VECTORS_FILE, self.dim)
        for chunk_keys, chunk in self._slices(keys, vectors):
            index.add(chunk_keys, chunk)
            if vector_file is not None:
                vector_file.append(chunk, chunk_keys)
        if vector_file is not None:
            vector_file.close()
        index.save(self.directory)
        if checked(index) and len(keys):
            orphans = Orphans(*find_orphans(index, self._slices(keys, vectors)))
            if len(orphans):
                orphans.save(self.directory)
        del vectors
        pending.unlink()
        names = sync_files(self.directory)
        first, last = (int(keys[0]), int(keys[-1])) if len(keys) else (0, 0)
        return SegmentEntry(name, directory_name, len(keys), first, last, index=kind), names

    @staticmethod
    def _slices(keys: np.ndarray, vectors: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(keys), SLICE):
            yield keys[start : start + SLICE], np.asarray(vectors[start : start + SLICE], dtype=np.float32)

    def discard(self) -> None:
        self.store.close()
        self._pending.close()
        shutil.rmtree(self.directory, ignore_errors=True)
