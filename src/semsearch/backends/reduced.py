"""Dimension reduction before the index: ``random-projection:64`` (as the original tutorial did) and ``pca:128``.

A reducer is fitted once, on a sample of the collection's vectors, with scikit-learn (the
``reduce`` extra), and saved as ``reducer.npz``: its projection matrix and mean, no pickle.
Applying a saved one needs only NumPy. Projected vectors are L2-normalised again, so every
backend still ranks by cosine.

``ReducedIndex`` wraps any backend: it reduces what it is given to add and to search, and,
asked to (the ``rerank`` search parameter), fetches more candidates than wanted and
re-ranks them by cosine on the full vectors kept in the collection's vectors.npy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from semsearch.backends.base import MISSING_ID, ParamSpec, VectorIndex, as_queries, padded_results
from semsearch.encoders import normalise
from semsearch.errors import SemsearchError, import_optional
from semsearch.storage.layout import MAX_RERANK, REDUCER_FILE, VECTORS_FILE
from semsearch.storage.vector_file import StoredVectors

# Vectors a reducer is fitted on: the first ones added. PCA on 20,000 x 512 takes about a second.
DEFAULT_SAMPLE_SIZE = 20_000
SEED = 42
# Candidates fetched and re-ranked by cosine on the full vectors: the search parameter rerank=N.
RERANK = ParamSpec(int, 0, MAX_RERANK)


class Reducer:
    """A linear map to fewer dimensions: ``normalise((vectors - mean) @ components.T)``."""

    kind: ClassVar[str]

    def __init__(self, dim: int, components: np.ndarray | None = None, mean: np.ndarray | None = None) -> None:
        if dim < 1:
            raise SemsearchError(f"a reducer needs at least 1 dimension, got {dim}")
        self.dim = dim
        self.components = components
        self.mean = mean

    @property
    def fitted(self) -> bool:
        return self.components is not None

    def fit(self, sample: np.ndarray) -> None:
        sample = np.asarray(sample, dtype=np.float32)
        if self.dim > sample.shape[1]:
            raise SemsearchError(f"cannot reduce {sample.shape[1]} dimensions to {self.dim}: that is more, not fewer")
        import_optional("sklearn", "scikit-learn", "reduce", f"Fitting a {self.kind} reducer")
        self._fit(sample)

    def _fit(self, sample: np.ndarray) -> None:
        raise NotImplementedError

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        if self.components is None or self.mean is None:
            raise RuntimeError("the reducer is not fitted yet")
        vectors = np.asarray(vectors, dtype=np.float32)
        return normalise((vectors - self.mean) @ self.components.T)

    def spec(self) -> dict[str, Any]:
        """What the manifest records: {"kind", "dim"}."""
        return {"kind": self.kind, "dim": self.dim}

    def save(self, directory: Path) -> list[str]:
        if self.components is None or self.mean is None:
            raise RuntimeError("the reducer is not fitted yet")
        with open(directory / REDUCER_FILE, "wb") as stream:
            np.savez(stream, kind=np.array(self.kind), components=self.components, mean=self.mean)
        return [REDUCER_FILE]

    @staticmethod
    def load(directory: Path) -> Reducer:
        with np.load(directory / REDUCER_FILE, allow_pickle=False) as saved:
            kind = str(saved["kind"])
            components = np.asarray(saved["components"], dtype=np.float32)
            mean = np.asarray(saved["mean"], dtype=np.float32)
        if kind not in REDUCERS:
            raise SemsearchError(f"{directory / REDUCER_FILE}: unknown reducer kind {kind!r}")
        return REDUCERS[kind](components.shape[0], components, mean)


class RandomProjection(Reducer):
    """scikit-learn's GaussianRandomProjection, seeded: the original tutorial's reduction."""

    kind = "random-projection"

    def _fit(self, sample: np.ndarray) -> None:
        from sklearn.random_projection import GaussianRandomProjection

        projection = GaussianRandomProjection(n_components=self.dim, random_state=SEED).fit(sample)
        self.components = np.asarray(projection.components_, dtype=np.float32)
        self.mean = np.zeros(sample.shape[1], dtype=np.float32)


class PrincipalComponents(Reducer):
    """scikit-learn's PCA: the directions along which the sample varies most."""

    kind = "pca"

    def _fit(self, sample: np.ndarray) -> None:
        from sklearn.decomposition import PCA

        if self.dim > len(sample):
            raise SemsearchError(f"pca:{self.dim} needs at least {self.dim} vectors to fit on, got {len(sample)}")
        pca = PCA(n_components=self.dim, random_state=SEED).fit(sample)
        self.components = np.asarray(pca.components_, dtype=np.float32)
        self.mean = np.asarray(pca.mean_, dtype=np.float32)


REDUCERS: dict[str, type[Reducer]] = {reducer.kind: reducer for reducer in (RandomProjection, PrincipalComponents)}


def parse_reducer(spec: str) -> Reducer:
    """A reducer from ``KIND:DIMENSIONS``, e.g. ``random-projection:64`` or ``pca:128``."""
    kind, _, dim = spec.partition(":")
    if kind not in REDUCERS or not dim.isdigit():
        raise SemsearchError(f"--reduce {spec!r}: expected KIND:DIMENSIONS with KIND one of {', '.join(REDUCERS)}, e.g. pca:128")
    return REDUCERS[kind](int(dim))


class ReducedIndex(VectorIndex):
    """A backend's index over reduced vectors. The full vectors stay in the collection's vectors.npy."""

    keeps_vectors = False

    def __init__(self, inner: VectorIndex, reducer: Reducer, *, rerank: int = 0, sample_size: int = DEFAULT_SAMPLE_SIZE,
                 full_vectors: Path | None = None) -> None:
        self.inner = inner  # first: the threads setter that VectorIndex.__init__ calls passes them on to it
        # The inner index's parameters (checked by it already), and rerank, which only this one takes.
        self.param_schema = {**inner.param_schema, "rerank": RERANK}  # type: ignore[misc]
        self.name = inner.name  # type: ignore[misc]
        super().__init__(inner.dim, **inner.params)
        self.params = inner.params  # the manifest's backend params are the inner index's
        self.reducer = reducer
        self.rerank = int(rerank)
        self.name = inner.name  # type: ignore[misc]
        self.supports_updates = inner.supports_updates  # type: ignore[misc]
        self.search_params = (*inner.search_params, "rerank")  # type: ignore[misc]
        self._sample_size = sample_size
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._full_vectors_path = full_vectors
        self._full_vectors: StoredVectors | None = None

    @property
    def file_name(self) -> str:
        return self.inner.file_name

    @property  # type: ignore[override]
    def threads(self) -> int | None:
        return self.inner.threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self.inner.threads = value

    def files_moved_to(self, directory: Path) -> None:
        self._full_vectors_path = directory / VECTORS_FILE
        self._full_vectors = None

    def reducer_spec(self) -> dict[str, Any]:
        """The manifest's "reducer": kind, dim and the default number of candidates re-ranked."""
        return {**self.reducer.spec(), "rerank": self.rerank}

    def __len__(self) -> int:
        return len(self.inner) + sum(len(ids) for ids, _ in self._pending)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self.reducer.fitted:
            self.inner.add(ids, self.reducer.transform(vectors))
            return
        self._pending.append((np.asarray(ids, dtype=np.int64), np.asarray(vectors, dtype=np.float32)))
        if sum(len(pending_ids) for pending_ids, _ in self._pending) >= self._sample_size:
            self._fit()

    def _fit(self) -> None:
        """Fit the reducer on the vectors held back so far, then index them."""
        if self.reducer.fitted or not self._pending:
            return
        ids = np.concatenate([pending_ids for pending_ids, _ in self._pending])
        vectors = np.concatenate([pending_vectors for _, pending_vectors in self._pending])
        self._pending = []
        self.reducer.fit(vectors)
        self.inner.add(ids, self.reducer.transform(vectors))

    def remove(self, ids: np.ndarray) -> None:
        kept = []
        for pending_ids, pending_vectors in self._pending:
            keep = ~np.isin(pending_ids, ids)
            kept.append((pending_ids[keep], pending_vectors[keep]))
        self._pending = kept
        self.inner.remove(ids)

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        self._fit()
        rerank = int(params.pop("rerank", self.rerank))
        if not self.reducer.fitted:  # nothing was ever added
            return padded_results(len(np.atleast_2d(queries)), k)
        queries = as_queries(queries, self.reducer.components.shape[1])
        candidates, scores = self.inner.search(self.reducer.transform(queries), max(k, rerank), **params)
        if rerank <= 0:
            return candidates[:, :k], scores[:, :k]
        return self._rerank(queries, candidates, k)

    def _rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best candidates by cosine on the full vectors."""
        stored = self._stored_vectors()
        ids, scores = padded_results(len(queries), k)
        for row, (query, row_candidates) in enumerate(zip(queries, candidates)):
            found = row_candidates[row_candidates != MISSING_ID]
            exact = stored.vectors(found) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            ids[row, : len(best)] = found[best]
            scores[row, : len(best)] = exact[best]
        return ids, scores

    def _stored_vectors(self) -> StoredVectors:
        if self._full_vectors is None:
            if self._full_vectors_path is None or not self._full_vectors_path.is_file():
                raise ValueError("re-ranking needs the full vectors (vectors.npy), and this index has none")
            self._full_vectors = StoredVectors(self._full_vectors_path)
        return self._full_vectors

    def save(self, directory: Path) -> list[str]:
        self._fit()
        return self.inner.save(directory) + self.reducer.save(directory)

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> VectorIndex:
        raise TypeError("open a reduced index with semsearch.backends.factory.open_index, which reads the reducer too")
