"""hnswlib: the reference HNSW implementation. Vectors are kept in float32 in the index and handed back.

hnswlib reads its whole file into memory on load (it cannot memory-map), and marks removed
ids as deleted rather than taking them out of the graph; the deleted ids are saved beside
the index so a reopened index knows how many live vectors it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import VectorIndex, as_ids, as_queries, load_array, padded_results, save_array
from semsearch.errors import import_optional

DEFAULTS: dict[str, Any] = {"M": 16, "ef_construction": 100, "ef": 64}
# Room made for this many vectors at first; the graph's capacity doubles whenever it fills.
INITIAL_CAPACITY = 1024


class HnswlibIndex(VectorIndex):
    name = "hnswlib"
    keeps_vectors = True
    search_params = ("ef",)

    def __init__(self, dim: int, **params: Any) -> None:
        super().__init__(dim, **{**DEFAULTS, **params})
        hnswlib = import_optional("hnswlib", "hnswlib", "hnswlib", "The hnswlib backend")
        self._index = hnswlib.Index(space="cosine", dim=dim)
        self._deleted: set[int] = set()
        # hnswlib crashes when an index is used before init_index or load_index: track it here.
        self._initialised = False

    def _create(self, capacity: int) -> None:
        self._index.init_index(
            max_elements=capacity, ef_construction=int(self.params["ef_construction"]), M=int(self.params["M"])
        )
        self._initialised = True

    def __len__(self) -> int:
        return self._index.element_count - len(self._deleted) if self._initialised else 0

    def _threads(self) -> int:
        return self.threads or -1

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = as_ids(ids), as_queries(vectors, self.dim)
        if not self._initialised:
            self._create(max(INITIAL_CAPACITY, len(ids)))
        needed = self._index.element_count + len(ids)
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
        self._index.add_items(vectors, ids.astype(np.uint64), num_threads=self._threads())
        self._deleted.difference_update(ids.tolist())

    def remove(self, ids: np.ndarray) -> None:
        if not self._initialised:
            return
        present = set(self._index.get_ids_list())
        for document_id in as_ids(ids).tolist():
            if document_id in present and document_id not in self._deleted:
                self._index.mark_deleted(document_id)
                self._deleted.add(document_id)

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        queries = as_queries(queries, self.dim)
        ids, scores = padded_results(len(queries), k)
        available = min(k, len(self))
        if available == 0:
            return ids, scores
        self._index.set_ef(max(int(self.search_param(params, "ef")), available))
        try:
            labels, distances = self._index.knn_query(queries, k=available, num_threads=self._threads())
        except RuntimeError:
            # After removals the graph can hold fewer reachable neighbours than asked for:
            # take what each query can reach, one query at a time.
            return self._search_each(queries, ids, scores, available)
        ids[:, :available] = labels.astype(np.int64)
        scores[:, :available] = 1.0 - distances
        return ids, scores

    def _search_each(self, queries: np.ndarray, ids: np.ndarray, scores: np.ndarray, available: int) -> tuple[np.ndarray, np.ndarray]:
        for row, query in enumerate(queries):
            for count in range(available, 0, -1):
                try:
                    labels, distances = self._index.knn_query(query[None, :], k=count, num_threads=1)
                except RuntimeError:
                    continue
                ids[row, :count] = labels[0].astype(np.int64)
                scores[row, :count] = 1.0 - distances[0]
                break
        return ids, scores

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self._index.get_items(as_ids(ids).astype(np.uint64), return_type="numpy"), dtype=np.float32)

    def save(self, directory: Path) -> list[str]:
        if not self._initialised:
            self._create(INITIAL_CAPACITY)
        self._index.save_index(str(directory / self.file_name))
        deleted_name = f"{self.file_name}.deleted"
        save_array(directory / deleted_name, np.asarray(sorted(self._deleted), dtype=np.int64))
        return [self.file_name, deleted_name]

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> HnswlibIndex:
        """hnswlib cannot memory-map: the file is read into memory whatever ``mmap`` says."""
        index = cls(dim, **params)
        index._index.load_index(str(directory / index.file_name))
        index._initialised = True
        index._deleted = set(load_array(directory / f"{index.file_name}.deleted").tolist())
        return index

