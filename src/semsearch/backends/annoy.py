"""Annoy: a forest of random-projection trees in one memory-mapped file, as the original tutorial used.

Annoy builds its trees once, over every vector it was given, and cannot take more after
that: adding to a built index is an error that says so. Annoy numbers items 0..n-1 and
allocates up to the largest number, so documents are stored by position and a sidecar
array maps positions to document ids; a removed document's position is marked -1 there
and skipped at search time, since Annoy cannot take an item out of its trees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import MISSING_ID, VectorIndex, as_ids, as_queries, load_array, padded_results, save_array
from semsearch.errors import import_optional

# The tutorial's settings: 100 trees, and search_k -1, which Annoy reads as n_trees * k.
DEFAULTS: dict[str, Any] = {"n_trees": 100, "search_k": -1}


class AnnoyIndex(VectorIndex):
    name = "annoy"
    keeps_vectors = False
    supports_updates = False
    search_params = ("search_k",)

    def __init__(self, dim: int, **params: Any) -> None:
        super().__init__(dim, **{**DEFAULTS, **params})
        annoy = import_optional("annoy", "annoy", "annoy", "The annoy backend")
        self._index = annoy.AnnoyIndex(dim, "angular")
        # Document id at each Annoy position; MISSING_ID where the document was removed.
        self._ids = np.zeros(0, dtype=np.int64)
        self._built = False

    def __len__(self) -> int:
        return int(np.count_nonzero(self._ids != MISSING_ID))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._built:
            raise ValueError("Annoy cannot add vectors to an index once its trees are built; rebuild the collection to add documents")
        ids, vectors = as_ids(ids), as_queries(vectors, self.dim)
        start = len(self._ids)
        for offset, vector in enumerate(vectors):
            self._index.add_item(start + offset, vector)
        self._ids = np.concatenate([self._ids, ids])

    def remove(self, ids: np.ndarray) -> None:
        self._ids = np.where(np.isin(self._ids, as_ids(ids)), MISSING_ID, self._ids)

    def _build(self) -> None:
        if self._built:
            return
        jobs = self.threads or -1
        self._index.build(int(self.params["n_trees"]), n_jobs=jobs)
        self._built = True

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        queries = as_queries(queries, self.dim)
        self._build()
        ids, scores = padded_results(len(queries), k)
        search_k = int(self.search_param(params, "search_k"))
        positions_to_ids = self._ids
        removed = len(positions_to_ids) - len(self)
        # Ask for enough extra neighbours to make up for removed documents among them.
        fetch_count = min(k + removed, len(positions_to_ids))
        for row, query in enumerate(queries):
            positions, distances = self._index.get_nns_by_vector(query, fetch_count, search_k=search_k, include_distances=True)
            found = positions_to_ids[np.asarray(positions, dtype=np.int64)]
            live = found != MISSING_ID
            found = found[live][:k]
            # Annoy's angular distance is sqrt(2 - 2 cos) between normalised vectors.
            cosine = 1.0 - np.square(np.asarray(distances, dtype=np.float32)[live][:k]) / 2.0
            ids[row, : len(found)] = found
            scores[row, : len(found)] = cosine
        return ids, scores

    def save(self, directory: Path) -> list[str]:
        self._build()
        ids_name = f"{self.file_name}.ids"
        self._index.save(str(directory / self.file_name))
        save_array(directory / ids_name, self._ids)
        return [self.file_name, ids_name]

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> AnnoyIndex:
        """Annoy always memory-maps its file; ``mmap=False`` reads the pages in at once instead of on demand."""
        index = cls(dim, **params)
        index._index.load(str(directory / index.file_name), prefault=not mmap)
        index._ids = load_array(directory / f"{index.file_name}.ids")
        index._built = True
        return index
