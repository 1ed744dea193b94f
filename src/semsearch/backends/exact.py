"""Exact search with NumPy: every vector scored against every query. The ground truth for recall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import MISSING_ID, VectorIndex, as_queries, load_array, missing_vector, save_array
from semsearch.backends.checks import all_distinct, check_npy, checked_once, damaged, library_errors

# Queries scored at once: bounds the (block, n) score matrix to about block * n * 4 bytes.
QUERY_BLOCK = 64


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of the k largest scores per row, best first, padded with -1/-inf."""
    rows, columns = scores.shape
    take = min(k, columns)
    positions = np.full((rows, k), MISSING_ID, dtype=np.int64)
    values = np.full((rows, k), -np.inf, dtype=np.float32)
    if take == 0:
        return positions, values
    partition = np.argpartition(-scores, take - 1, axis=1)[:, :take]
    partial = np.take_along_axis(scores, partition, axis=1)
    order = np.argsort(-partial, axis=1, kind="stable")
    positions[:, :take] = np.take_along_axis(partition, order, axis=1)
    values[:, :take] = np.take_along_axis(partial, order, axis=1)
    return positions, values


def best_rows(queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``rows``) and scores of the k best rows per query by inner product, the cosine of
    normalised vectors, best first, padded with -1/-inf.

    float16 rows, as usearch keeps them, are scored as they are by usearch's SIMD kernels: NumPy would first
    widen them to float32, which took 10 times as long as the product (BENCHMARKS.md, "Filtered search").
    """
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if rows.dtype != np.float16 or len(rows) == 0:
        return top_k(queries @ np.asarray(rows, dtype=np.float32).T, k)
    from semsearch.backends.usearch import brute_force_inner_product

    return brute_force_inner_product(queries, np.ascontiguousarray(rows), k)


class ExactIndex(VectorIndex):
    name = "exact"
    keeps_vectors = True

    @classmethod
    def saved_files(cls) -> tuple[str, ...]:
        return (f"index.{cls.name}", f"index.{cls.name}.ids")

    def __init__(self, dim: int, **params: Any) -> None:
        super().__init__(dim, **params)
        self._ids = np.zeros(0, dtype=np.int64)
        self._vectors = np.zeros((0, dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = as_queries(vectors, self.dim)
        if np.isin(ids, self._ids).any():
            raise ValueError("some ids are in the index already")
        self._ids = np.concatenate([self._ids, ids])
        self._vectors = np.concatenate([self._vectors, vectors])

    def remove(self, ids: np.ndarray) -> None:
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        self._ids = self._ids[keep]
        self._vectors = self._vectors[keep]

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        queries = as_queries(queries, self.dim)
        all_ids = np.full((len(queries), k), MISSING_ID, dtype=np.int64)
        all_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        for start in range(0, len(queries), QUERY_BLOCK):
            block = queries[start : start + QUERY_BLOCK]
            positions, scores = top_k(block @ self._vectors.T, k)
            found = positions != MISSING_ID
            all_ids[start : start + len(block)][found] = self._ids[positions[found]]
            all_scores[start : start + len(block)] = scores
        return all_ids, all_scores

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        position = {document_id: index for index, document_id in enumerate(self._ids.tolist())}
        rows = [position.get(int(document_id)) for document_id in ids]
        if None in rows:
            raise missing_vector(self.name, int(np.asarray(ids)[rows.index(None)]))
        return self._vectors[rows]

    def save(self, directory: Path) -> list[str]:
        ids_name = f"{self.file_name}.ids"
        save_array(directory / self.file_name, self._vectors)
        save_array(directory / ids_name, self._ids)
        return [self.file_name, ids_name]

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> ExactIndex:
        path = directory / f"index.{cls.name}"
        ids_path = directory / f"index.{cls.name}.ids"
        index = cls.for_loading(directory, dim, params)
        checked_once([path, ids_path], {"backend": cls.name, "dim": dim}, lambda: check_index_files(path, ids_path, dim=dim))
        with library_errors(path, cls.name):
            index._vectors = load_array(path, mmap=mmap)
            index._ids = load_array(ids_path)
        return index


def check_index_files(path: Path, ids_path: Path, *, dim: int) -> None:
    """index.exact: a C-order float32 (n, dim) .npy of finite values; index.exact.ids: n distinct non-negative int64."""
    rows, _ = check_npy(path, "<f4", lambda shape: None if len(shape) == 2 and shape[1] == dim else f"has shape {shape}, expected (n, {dim})",
                        finite=True)
    check_npy(ids_path, "<i8", lambda shape: None if shape == (rows,) else f"has shape {shape}, expected ({rows},) for {rows:,} vectors")
    ids = load_array(ids_path)
    if len(ids) and (ids.min() < 0 or not all_distinct(ids)):
        raise damaged(ids_path, "ids that are not distinct non-negative document ids")
