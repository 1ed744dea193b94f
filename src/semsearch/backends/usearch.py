"""usearch: an HNSW graph in one file, opened memory-mapped. The default backend.

Stores vectors in float16 by default, which halves the size for no measurable loss
in recall, and hands them back, so a collection needs no separate vectors.npy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import MISSING_ID, VectorIndex, as_queries

DEFAULTS: dict[str, Any] = {"dtype": "f16", "connectivity": 16, "expansion_add": 128, "expansion_search": 64}


class UsearchIndex(VectorIndex):
    name = "usearch"
    keeps_vectors = True
    search_params = ("expansion_search",)

    def __init__(self, dim: int, **params: Any) -> None:
        super().__init__(dim, **{**DEFAULTS, **params})
        from usearch.index import Index

        self._index = Index(
            ndim=dim,
            metric="cos",
            dtype=self.params["dtype"],
            connectivity=int(self.params["connectivity"]),
            expansion_add=int(self.params["expansion_add"]),
            expansion_search=int(self.params["expansion_search"]),
        )
        self._read_only = False

    def __len__(self) -> int:
        return len(self._index)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._read_only:
            raise ValueError("this usearch index is memory-mapped read-only; load it with mmap=False to change it")
        self._index.add(np.asarray(ids, dtype=np.uint64), as_queries(vectors, self.dim))

    def remove(self, ids: np.ndarray) -> None:
        if self._read_only:
            raise ValueError("this usearch index is memory-mapped read-only; load it with mmap=False to change it")
        self._index.remove(np.asarray(ids, dtype=np.uint64))

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        queries = as_queries(queries, self.dim)
        self._index.expansion_search = int(params.get("expansion_search", self.params["expansion_search"]))
        matches = self._index.search(queries, k)
        keys = np.atleast_2d(matches.keys).astype(np.int64)
        distances = np.atleast_2d(matches.distances)
        counts = np.atleast_1d(getattr(matches, "counts", len(matches.keys)))
        ids = np.full((len(queries), k), MISSING_ID, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        found = np.arange(keys.shape[1])[None, :] < counts[:, None]
        ids[:, : keys.shape[1]][found] = keys[found]
        scores[:, : keys.shape[1]][found] = 1.0 - distances[found]
        return ids, scores

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.vstack(self._index.get(np.asarray(ids, dtype=np.uint64), dtype=np.float32))

    def save(self, directory: Path) -> list[str]:
        self._index.save(str(directory / self.file_name))
        return [self.file_name]

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> UsearchIndex:
        index = cls(dim, **params)
        path = str(directory / index.file_name)
        if mmap:
            index._index.view(path)
            index._read_only = True
        else:
            index._index.load(path)
        return index
