"""The interface every approximate nearest neighbour library is wrapped in.

Vectors are L2-normalised, so the metric is cosine and a score is a cosine
similarity: 1 for the same direction, higher is nearer. Ids are non-negative
int64; a search that finds fewer than k neighbours pads ids with -1 and scores
with -inf.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from semsearch.errors import CollectionError, SemsearchError
from semsearch.storage.layout import INDEX_FILE_PREFIX, MAX_DIM

MISSING_ID = -1


class BackendParamError(SemsearchError, ValueError):
    """A backend parameter that is unknown, of the wrong type or out of range: one line naming it.

    A ValueError too, so that code that turns a backend's ValueError into a user's error (a
    search, an update) treats it as it treats the others."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter a backend takes: its type, and the range or the choices it must be in.

    Checked before the library sees a value: hnswlib's build crashes the process on M=0."""

    kind: type  # int, float, str or bool
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    # Other values besides the range that the library gives a meaning to (Annoy's search_k -1).
    also: tuple[Any, ...] = ()
    help: str = ""

    def check(self, backend: str, name: str, value: Any) -> None:
        def refuse(problem: str) -> BackendParamError:
            return BackendParamError(f"the {backend} backend's parameter {name} {problem}, got {_shown(value)}")

        if self.kind is bool:
            if not isinstance(value, bool):
                raise refuse("must be true or false")
        elif self.kind is int:
            if type(value) is not int and not (isinstance(value, np.integer)):
                raise refuse("must be an integer")
        elif self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
                raise refuse("must be a finite number")
        elif self.kind is str:
            if not isinstance(value, str):
                raise refuse("must be a string")
        if value in self.also and not isinstance(value, bool):
            return
        if self.choices is not None and value not in self.choices:
            raise refuse(f"must be one of {', '.join(str(choice) for choice in self.choices)}")
        if self.kind in (int, float):
            low = -math.inf if self.minimum is None else self.minimum
            high = math.inf if self.maximum is None else self.maximum
            if not low <= value <= high:
                allowed = " or ".join(str(extra) for extra in self.also)
                raise refuse(f"must be from {_number(low)} to {_number(high)}" + (f" (or {allowed})" if allowed else ""))
        if self.kind is str and self.maximum is not None and len(value) > self.maximum:
            raise refuse(f"must be at most {int(self.maximum)} characters")


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else str(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_dim(dim: Any) -> int:
    if type(dim) is not int and not isinstance(dim, np.integer):
        raise BackendParamError(f"an index's dimension must be an integer, got {_shown(dim)}")
    if not 1 <= dim <= MAX_DIM:
        raise BackendParamError(f"an index's dimension must be from 1 to {MAX_DIM:,}, got {dim:,}")
    return int(dim)


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
    # Cheaper search parameters for the first pass of the orphan check (``backends.reachability``), where every
    # document looks for its own vector: one found there is findable, and only the rest are searched again with
    # the index's own parameters. Empty: one pass.
    self_search_params: ClassVar[dict[str, Any]] = {}
    # Every parameter the backend takes, build- and search-time, with its type and range: an unknown
    # one, or a value out of range, is a BackendParamError before the library sees it.
    param_schema: ClassVar[dict[str, ParamSpec]] = {}

    def __init__(self, dim: int, **params: Any) -> None:
        self.dim = check_dim(dim)
        self.check_params(params)
        self.params: dict[str, Any] = params
        # Threads a library may use to add and search; None leaves it the library's choice (all cores).
        # Not a parameter of the index, so not in ``params``: the benchmark sets 1 to measure one core.
        self.threads: int | None = None

    @property
    def file_name(self) -> str:
        return f"{INDEX_FILE_PREFIX}{self.name}"

    @classmethod
    def saved_files(cls) -> tuple[str, ...]:
        """The names of the files ``save`` writes and ``load`` opens, so that a collection can insist its manifest lists them."""
        return (f"{INDEX_FILE_PREFIX}{cls.name}",)

    @classmethod
    def for_loading(cls, directory: Path, dim: int, params: dict[str, Any]) -> Any:
        """An empty index to load a collection's file into; parameters the manifest got wrong are the collection's fault."""
        try:
            return cls(dim, **params)
        except BackendParamError as error:
            raise CollectionError(f"{directory}: {error}") from None

    def files_moved_to(self, directory: Path) -> None:
        """The collection's files are now in ``directory`` (an update's new generation): an index that
        reads a collection file lazily (``ReducedIndex``'s vectors.npy) reads it from there."""

    def reducer_spec(self) -> dict[str, Any] | None:
        """The manifest's "reducer" entry: null, unless the index works on reduced vectors (``ReducedIndex``)."""
        return None

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

    def stored_rows(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of ``ids`` in the number type the index keeps them in (float16 for usearch's default), for
        an exact scan that scores them as they are stored; float32 ``vectors`` unless a backend can do better."""
        return self.vectors(ids)

    def search_param(self, params: dict[str, Any], name: str) -> Any:
        """A search-time parameter: the caller's value for this search, else the one the index was built with."""
        return params.get(name, self.params[name])

    def check_params(self, params: dict[str, Any]) -> None:
        """Build parameters (and the search defaults recorded with them): each known, of its type, in its range."""
        unknown = sorted(set(params) - set(self.param_schema))
        if unknown:
            allowed = ", ".join(sorted(self.param_schema)) or "none"
            raise BackendParamError(f"the {self.name} backend has no parameter {', '.join(map(_shown, unknown))}; it takes: {allowed}")
        for name, value in params.items():
            self.param_schema[name].check(self.name, name, value)

    def check_search_params(self, params: dict[str, Any]) -> None:
        unknown = sorted(set(params) - set(self.search_params))
        if unknown:
            allowed = ", ".join(self.search_params) or "none"
            raise BackendParamError(f"the {self.name} backend has no search parameter {', '.join(map(str, unknown))}; it takes: {allowed}")
        for name, value in params.items():
            spec = self.param_schema.get(name)
            if spec is not None:
                spec.check(self.name, name, value)


def missing_vector(backend: str, document_id: int) -> ValueError:
    """A document the store holds but the index does not: a damaged (or crafted) collection, as a ValueError,
    which a search and an update report in one line."""
    return ValueError(f"the {backend} index holds no vector for document {document_id}; the collection is damaged, rebuild it")


def save_array(path: Path, array: np.ndarray) -> None:
    """A .npy file beside an index (ids, vectors), never pickled."""
    with open(path, "wb") as stream:
        np.save(stream, array, allow_pickle=False)


def load_array(path: Path, *, mmap: bool = False) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def padded_results(rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and scores for ``rows`` searches, filled with "nothing found" (-1, -inf) for a backend to overwrite."""
    return np.full((rows, k), MISSING_ID, dtype=np.int64), np.full((rows, k), -np.inf, dtype=np.float32)


def as_ids(ids: np.ndarray) -> np.ndarray:
    """Ids as a one-dimensional int64 array, refusing negative ones (-1 means "nothing found")."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if len(ids) and ids.min() < 0:
        raise ValueError(f"ids must be non-negative integers, got {int(ids.min())}")
    return ids


def as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    """Queries as a C-contiguous float32 matrix, checking the dimension."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if queries.shape[1] != dim:
        raise ValueError(f"queries have {queries.shape[1]} dimensions, the index has {dim}")
    return queries
