"""Re-ranking an index's candidates on the collection's float16 vectors (vectors.npy).

An index over quantised codes (faiss SQ8, usearch i8) traverses cheaply but scores
approximately; fetching a few more candidates and scoring them exactly on the stored
vectors gives back most of the recall the codes lost (issue 12). The vectors are the
collection's own ``vectors.npy``, memory-mapped, checked by ``factory.open_index`` before an
index is handed them; the lookup from ids to rows is sorted once, not per search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semsearch.backends.base import MISSING_ID, ParamSpec, padded_results
from semsearch.storage.layout import VECTORS_FILE
from semsearch.storage.vector_file import StoredVectors

# The search parameter: candidates fetched and scored exactly (0: none, the index's own scores).
RERANK = ParamSpec(int, 0, 10_000, help="candidates re-scored on the stored float16 vectors; 0 for none")


class StoredRerank:
    """The full vectors of a saved collection, opened on the first search that asks for re-ranking."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = None if directory is None else directory / VECTORS_FILE
        self._stored: StoredVectors | None = None

    def moved_to(self, directory: Path) -> None:
        self.path = directory / VECTORS_FILE
        self._stored = None

    def stored(self, dim: int, rows: int) -> StoredVectors:
        """The vectors, checked (once per file identity) to be ``rows`` finite float16 rows of ``dim`` with distinct ids."""
        if self._stored is None:
            if self.path is None or not self.path.is_file():
                raise ValueError("re-ranking needs the collection's full vectors (vectors.npy), and this index has none; "
                                 "search without rerank, or save the index beside its vectors first")
            from semsearch.backends.factory import check_vector_files  # factory imports every backend

            check_vector_files(self.path, dim, rows)
            self._stored = StoredVectors(self.path)
        return self._stored

    def rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best of each row's candidates by cosine on the stored vectors (queries are unit length); ``rows``: the
        index's size, which vectors.npy must match."""
        stored = self.stored(queries.shape[1], rows)
        ids, scores = padded_results(len(queries), k)
        for row, (query, row_candidates) in enumerate(zip(queries, candidates)):
            found = row_candidates[row_candidates != MISSING_ID]
            if not len(found):
                continue
            rows = stored.rows_of(found)
            order = np.argsort(rows, kind="stable")  # read the map front to back
            found, rows = found[order], rows[order]
            exact = np.asarray(stored.matrix[rows], dtype=np.float32) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            ids[row, : len(best)] = found[best]
            scores[row, : len(best)] = exact[best]
        return ids, scores
