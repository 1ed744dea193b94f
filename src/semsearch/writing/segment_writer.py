"""A new segment, written once: its store, its index and (where the index does not keep them) its vectors.

An update writes one from the documents it adds; a merge writes one from the live rows of the
segments it merges. Either way the segment directory is new, so nothing a reader has open is
touched; the manifest names it only once every file is on disk (``finish`` syncs them).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from semsearch.backends import VectorIndex, create_index
from semsearch.backends.factory import empty_like
from semsearch.backends.reachability import Orphans, checked, find_orphans
from semsearch.documents import Document
from semsearch.storage.atomic import sync_files
from semsearch.storage.layout import DOCUMENTS_FILE, VECTORS_FILE
from semsearch.storage.segments import SegmentEntry
from semsearch.storage.store import DocumentStore
from semsearch.storage.vector_file import StoredVectors, VectorFileWriter

# Vectors read back at once for the orphan check: bounds memory to about this many rows.
CHECK_CHUNK = 20_000
# A segment of at most this many documents is searched exactly: no approximate index is worth building for it
# (nor can every one be: an IVF index needs more vectors to train than a small update brings), and scoring
# 5,000 vectors takes about as long as one search of a graph. Larger ones get the collection's backend.
SMALL_SEGMENT = 5_000


class SegmentWriter:
    """Batches of (documents, keys, vectors) in ascending key order, into ``directory`` (created here, empty)."""

    def __init__(self, directory: Path, template: VectorIndex, dim: int) -> None:
        shutil.rmtree(directory, ignore_errors=True)  # a crashed update's leftover of the same name
        directory.mkdir()
        self.directory = directory
        self.dim = dim
        self.template = template
        # Every segment starts exact (full vectors in memory); ``finish`` builds the backend's index if it grew past small.
        self.index: VectorIndex = create_index("exact", dim)
        self.store = DocumentStore.create(directory / DOCUMENTS_FILE)
        self.vector_file: VectorFileWriter | None = None
        self.keys: list[np.ndarray] = []

    @property
    def rows(self) -> int:
        return sum(len(keys) for keys in self.keys)

    def add(self, documents: list[Document], keys: np.ndarray, vectors: np.ndarray) -> None:
        if not len(keys):
            return
        self.store.add(documents, keys.tolist())
        self.index.add(keys, vectors)
        self.keys.append(np.asarray(keys, dtype=np.int64))

    def finish(self, name: str, directory_name: str) -> tuple[SegmentEntry, list[str]]:
        """Save the index (and the documents it cannot find by their own vectors), sync every file; the new entry
        and the files' names, relative to the segment's directory."""
        self.store.finish()
        self.store.close()
        keys = np.concatenate(self.keys) if self.keys else np.zeros(0, dtype=np.int64)
        kind = "exact" if len(keys) <= SMALL_SEGMENT or self.template.name == "exact" and not self.template.reducer_spec() else None
        if kind is None:
            self._index_with_backend(keys)
        self.index.save(self.directory)
        if checked(self.index) and len(keys):
            orphans = Orphans(*find_orphans(self.index, self._chunks(keys)))
            if len(orphans):
                orphans.save(self.directory)
        names = sync_files(self.directory)
        first, last = (int(keys[0]), int(keys[-1])) if len(keys) else (0, 0)
        return SegmentEntry(name, directory_name, len(keys), first, last, index=kind), names

    def _index_with_backend(self, keys: np.ndarray) -> None:
        """The collection's own kind of index, filled from the exact one's vectors (and vectors.npy, if it needs one)."""
        exact, self.index = self.index, empty_like(self.template, self.dim)
        if not self.index.keeps_vectors:
            self.vector_file = VectorFileWriter(self.directory / VECTORS_FILE, self.dim)
        for start in range(0, len(keys), CHECK_CHUNK):
            chunk = keys[start : start + CHECK_CHUNK]
            vectors = exact.vectors(chunk)
            self.index.add(chunk, vectors)
            if self.vector_file is not None:
                self.vector_file.append(vectors, chunk)
        if self.vector_file is not None:
            self.vector_file.close()

    def _chunks(self, keys: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        stored = StoredVectors(self.directory / VECTORS_FILE) if self.vector_file is not None else None
        for start in range(0, len(keys), CHECK_CHUNK):
            chunk = keys[start : start + CHECK_CHUNK]
            yield chunk, stored.vectors(chunk) if stored is not None else self.index.vectors(chunk)

    def discard(self) -> None:
        self.store.close()
        if self.vector_file is not None:
            self.vector_file.close()
        shutil.rmtree(self.directory, ignore_errors=True)
