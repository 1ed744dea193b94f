"""Every document findable: the documents an approximate index cannot find, kept aside and scored exactly.

A graph index (HNSW in usearch, hnswlib, faiss) can leave a node without incoming links, and
partitioned ones (IVF, Annoy) can miss a point at the edge of its cell: such a document is not
found even by its own vector. After a build, and for the documents an update adds, each
document's vector is searched for; those not found first (or tied first) are the index's
*orphans*, saved as ``orphans.npz`` (ids and float16 vectors, no pickle) beside the index. A
search scores them exactly against the query and merges them into the index's results, so
a document's own text always finds it.

Not checked: the ``exact`` backend (it finds everything) and indexes over reduced vectors
(their scores are in another space; the full vectors re-rank them instead).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from semsearch.backends.base import MISSING_ID, VectorIndex
from semsearch.backends.exact import top_k
from semsearch.storage.layout import ORPHANS_FILE

# Neighbours asked for per document when checking: a document found among them, at a score
# equal to the first one's, is findable (a duplicate text may tie with it).
CHECK_DEPTH = 10
# Scores this close are a tie (float16 vectors compared in float32).
TIE = 1e-3


def checked(index: VectorIndex) -> bool:
    """Whether the index is worth checking: approximate, and over the encoder's own vectors."""
    return index.name != "exact" and index.reducer_spec() is None


def find_orphans(index: VectorIndex, slices: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of the documents the index does not find first by their own vectors."""
    orphan_ids: list[np.ndarray] = []
    orphan_vectors: list[np.ndarray] = []
    depth = min(CHECK_DEPTH, max(len(index), 1))
    for ids, vectors in slices:
        if len(ids) == 0:
            continue
        ids, vectors = np.asarray(ids, dtype=np.int64), np.asarray(vectors, dtype=np.float32)
        # The first pass with the backend's cheap parameters finds nearly every document; the few it does not are
        # searched again as a query would search them (at 1.1M the one pass at expansion_search 160 took longer than the graph).
        lost = _not_first(ids, *index.search(vectors, depth, **index.self_search_params))
        if index.self_search_params and lost.any():
            again = np.flatnonzero(lost)
            lost[again[~_not_first(ids[again], *index.search(vectors[again], depth))]] = False
        orphan_ids.append(ids[lost])
        orphan_vectors.append(vectors[lost])
    if not orphan_ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, index.dim), dtype=np.float32)
    return np.concatenate(orphan_ids), np.concatenate(orphan_vectors)


def _not_first(ids: np.ndarray, found: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are missing from their own search's results, or found below the first score (ties aside)."""
    own = found == ids[:, None]
    own_score = np.where(own, scores, -np.inf).max(axis=1)
    return ~own.any(axis=1) | (own_score < scores[:, 0] - TIE)


class Orphans:
    """The orphans of one index, in memory (a few per thousand documents), merged into its results."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vectors = np.asarray(vectors, dtype=np.float32)

    @classmethod
    def empty(cls, dim: int) -> Orphans:
        return cls(np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32))

    @classmethod
    def load(cls, directory: Path, dim: int) -> Orphans:
        """The saved orphans, or none: collections built before this file existed have none recorded."""
        path = directory / ORPHANS_FILE
        if not path.is_file():
            return cls.empty(dim)
        with np.load(path, allow_pickle=False) as saved:
            ids, vectors = saved["ids"], saved["vectors"]
        if ids.ndim != 1 or vectors.shape != (len(ids), dim) or not np.isfinite(vectors).all():
            raise ValueError(f"{path}: {vectors.shape} vectors for {ids.shape} ids of {dim} dimensions")
        return cls(ids, vectors)

    def save(self, directory: Path) -> list[str]:
        with open(directory / ORPHANS_FILE, "wb") as stream:
            np.savez(stream, ids=self.ids, vectors=self.vectors.astype(np.float16))
        return [ORPHANS_FILE]

    def __len__(self) -> int:
        return len(self.ids)

    def changed(self, removed: Iterable[int], added_ids: np.ndarray, added_vectors: np.ndarray) -> Orphans:
        """After an update: the removed (or replaced) ones gone, the newly added orphans in."""
        keep = ~np.isin(self.ids, np.fromiter(removed, dtype=np.int64))
        return Orphans(np.concatenate([self.ids[keep], added_ids]), np.concatenate([self.vectors[keep], added_vectors]))

    def merge(self, queries: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The index's (ids, scores) with the orphans scored exactly and merged in, k per query."""
        if not len(self):
            return ids, scores
        candidates, vectors = self.ids, self.vectors
        exact = np.asarray(queries, dtype=np.float32) @ vectors.T
        # An orphan the index did find for a query is in both halves: keep the index's. One isin for every row
        # at once, each row's ids offset into a range of its own.
        span = int(max(candidates.max(), ids.max(initial=0))) + 2
        row_offsets = np.arange(len(ids), dtype=np.int64)[:, None] * span
        exact[np.isin(row_offsets + candidates, row_offsets + ids)] = -np.inf
        all_ids = np.concatenate([ids, np.broadcast_to(candidates, exact.shape)], axis=1)
        all_scores = np.concatenate([np.where(ids == MISSING_ID, -np.inf, scores).astype(np.float32), exact], axis=1)
        positions, merged_scores = top_k(all_scores, ids.shape[1])
        merged_ids = np.take_along_axis(all_ids, np.maximum(positions, 0), axis=1)
        return np.where(np.isfinite(merged_scores), merged_ids, MISSING_ID), merged_scores
