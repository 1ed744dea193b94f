"""The interface every approximate nearest neighbour library is wrapped in.

Vectors are L2-normalised, so the metric is cosine and a score is a cosine
similarity: 1 for the same direction, higher is nearer. Ids are non-negative
int64; a search that finds fewer than k neighbours pads ids with -1 and scores
with -inf.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

MISSING_ID = -1


class VectorIndex(ABC):
    """One ANN backend. ``params`` holds every build- and search-time setting, for the manifest."""

    name: ClassVar[str]
    # True when the index holds the full vectors and hands them back with ``vectors``,
    # so the collection need not keep a second copy in vectors.npy.
    keeps_vectors: ClassVar[bool] = False
    # False when a built index cannot take more vectors or forget some (Annoy): an update
    # then rebuilds the index from the stored vectors, and only when the caller asks for it.
    supports_updates: ClassVar[bool] = True
    # Parameters a caller may change per search without rebuilding.
    search_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dim: int, **params: Any) -> None:
        self.dim = dim
        self.params: dict[str, Any] = params

    @property
    def file_name(self) -> str:
        return f"index.{self.name}"

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given ids; ids must not be present already."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> None:
        """Forget the given ids; ids that are absent are ignored."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each of shape (len(queries), k), best first."""

    @abstractmethod
    def save(self, directory: Path) -> list[str]:
        """Write the index into ``directory``; returns the names of the files written."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> VectorIndex:
        """Open a saved index, memory-mapped where the library can, so opening is fast and shared."""

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids``; only for backends with ``keeps_vectors``."""
        raise NotImplementedError(f"the {self.name} backend does not keep full vectors")

    def check_search_params(self, params: dict[str, Any]) -> None:
        unknown = sorted(set(params) - set(self.search_params))
        if unknown:
            allowed = ", ".join(self.search_params) or "none"
            raise ValueError(f"the {self.name} backend has no search parameter {', '.join(unknown)}; it takes: {allowed}")


def as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    """Queries as a C-contiguous float32 matrix, checking the dimension."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if queries.shape[1] != dim:
        raise ValueError(f"queries have {queries.shape[1]} dimensions, the index has {dim}")
    return queries
