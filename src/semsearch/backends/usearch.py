"""usearch: an HNSW graph in one file, opened memory-mapped. The default backend.

Stores vectors in float16 by default, which halves the size for no measurable loss
in recall, and hands them back, so a collection needs no separate vectors.npy. Where one
is beside the index anyway (``semsearch bench``'s i8 graph, issue 12), ``rerank=N`` scores
N candidates on it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import MISSING_ID, ParamSpec, VectorIndex, as_ids, as_queries, missing_vector, padded_results
from semsearch.backends.rerank import RERANK, StoredRerank
from semsearch.backends.checks import checked_once, damaged, library_errors
from semsearch.backends.usearch_file import DTYPES, MappedRows, check_index_file

# From BENCHMARKS.md ("The default's expansion_search, 1.1M"): on 1.1M headlines this graph gave the best recall
# for its speed and the only size within target (1.29 GB); expansion_search 160 is the smallest measured that
# reaches recall@10 0.95 there (0.955 at 557 QPS, p99 2.5 ms; 64 gave 0.913). Lower it per query for speed.
DEFAULTS: dict[str, Any] = {"dtype": "f16", "connectivity": 16, "expansion_add": 128, "expansion_search": 160}
PARAM_SCHEMA: dict[str, ParamSpec] = {
    "dtype": ParamSpec(str, choices=tuple(DTYPES)),
    "connectivity": ParamSpec(int, 2, 512),
    "expansion_add": ParamSpec(int, 1, 100_000),
    "expansion_search": ParamSpec(int, 1, 100_000),
    "rerank": RERANK,
}


@cache
def _load_cxx_runtime_first() -> None:
    """Load the system's C++ runtime before usearch's compiled module.

    That module carries a static copy of the C++ runtime and exports its locale facet ids as
    GNU unique symbols, which then win for every library loaded later in the process: faiss's
    index_factory crashed (a segfault in std::regex) whenever usearch had been imported first.
    With the system's runtime loaded globally first, its symbols are the ones everybody binds to.
    """
    name = ctypes.util.find_library("stdc++")
    if name:
        try:
            ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass


def brute_force_inner_product(queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``backends.exact.best_rows`` for float16 rows: usearch's exact search over a matrix, no index.

    usearch rounds the query to float16 too, which moves a score by about 0.001; so it picks twice
    k candidates, and those are scored again against the float32 query: the scores are exact, as NumPy's.
    """
    _load_cxx_runtime_first()
    from usearch.index import MetricKind, search

    from semsearch.backends.exact import top_k

    take = min(2 * k + 10, len(rows))
    matches = search(rows, queries, take, MetricKind.IP, exact=True, threads=1)
    candidates = np.atleast_2d(matches.keys).astype(np.int64)
    exact = np.einsum("qcd,qd->qc", rows[candidates].astype(np.float32), queries)
    chosen, scores = top_k(exact, k)
    positions = np.where(chosen != MISSING_ID, np.take_along_axis(candidates, np.maximum(chosen, 0), axis=1), MISSING_ID)
    return positions, scores


# Collections of at most this many documents are searched by brute force over the index's vectors.
EXACT_SEARCH_LIMIT = 20_000


class UsearchIndex(VectorIndex):
    name = "usearch"
    keeps_vectors = True
    search_params = ("expansion_search", "rerank")
    self_search_params = {"expansion_search": 32}
    param_schema = PARAM_SCHEMA

    def __init__(self, dim: int, **params: Any) -> None:
        super().__init__(dim, **{**DEFAULTS, **params})
        _load_cxx_runtime_first()
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
        self._rerank = StoredRerank()
        # The viewed file's vectors by key, read on the first call of ``vectors`` (None: not viewed, or i8).
        self._mapped_rows: MappedRows | None = None
        self._viewed: Path | None = None

    def files_moved_to(self, directory: Path) -> None:
        self._rerank.moved_to(directory)

    def __len__(self) -> int:
        return len(self._index)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._read_only:
            raise ValueError("this usearch index is memory-mapped read-only; load it with mmap=False to change it")
        self._index.add(as_ids(ids).astype(np.uint64), as_queries(vectors, self.dim), threads=self.threads or 0)

    def remove(self, ids: np.ndarray) -> None:
        if self._read_only:
            raise ValueError("this usearch index is memory-mapped read-only; load it with mmap=False to change it")
        self._index.remove(as_ids(ids).astype(np.uint64))

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        queries = as_queries(queries, self.dim)
        self._index.expansion_search = int(self.search_param(params, "expansion_search"))
        # A small collection is searched exactly: as fast as the graph there (about 1.8 ms for 20,000 here), never a miss.
        exact = len(self) <= EXACT_SEARCH_LIMIT
        rerank = 0 if exact else int(params.get("rerank", self.params.get("rerank", 0)))
        if rerank > k:
            candidates, _ = self.search(queries, rerank, **{**params, "rerank": 0})
            return self._rerank.rerank(queries, candidates, k, len(self))
        matches = self._index.search(queries, k, threads=self.threads or 0, exact=exact)
        keys = np.atleast_2d(matches.keys).astype(np.int64)
        distances = np.atleast_2d(matches.distances)
        counts = np.atleast_1d(getattr(matches, "counts", len(matches.keys)))
        ids, scores = padded_results(len(queries), k)
        found = np.arange(keys.shape[1])[None, :] < counts[:, None]
        ids[:, : keys.shape[1]][found] = keys[found]
        scores[:, : keys.shape[1]][found] = 1.0 - distances[found]
        return ids, scores

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        keys = as_ids(ids).astype(np.uint64)
        if len(keys) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        mapped = self._mapped()
        if mapped is not None:
            return mapped(keys.astype(np.int64))
        found = self._index.get(keys, dtype=np.float32)
        found = found if isinstance(found, tuple) else (found,)
        for key, vector in zip(keys.tolist(), found):
            if vector is None:
                raise missing_vector(self.name, key)
        return np.vstack(found)

    def stored_rows(self, ids: np.ndarray) -> np.ndarray:
        mapped = self._mapped()
        if mapped is None or len(ids) == 0:
            return self.vectors(ids)
        return mapped.rows(as_ids(ids))

    def _mapped(self) -> MappedRows | None:
        """The viewed file's vectors by key, read from the map (float types only; i8 needs usearch's scaling)."""
        if self._viewed is None or self.params["dtype"] == "i8":
            return None
        if self._mapped_rows is None:
            with library_errors(self._viewed, self.name):
                self._mapped_rows = MappedRows(self._viewed, self.dim, self.params["dtype"])
        return self._mapped_rows

    def save(self, directory: Path) -> list[str]:
        self._index.save(str(directory / self.file_name))
        return [self.file_name]

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> UsearchIndex:
        """Open a saved index, after checking its whole file (``check_index_file``): usearch itself trusts it."""
        path = directory / f"index.{cls.name}"
        index = cls.for_loading(directory, dim, params)
        settings = {"dim": dim, "dtype": index.params["dtype"], "connectivity": int(index.params["connectivity"])}
        checked_once([path], {"backend": cls.name, **settings}, lambda: check_index_file(path, **settings))
        with library_errors(path, cls.name):
            if mmap:
                index._index.view(str(path))
                index._read_only = True
                index._viewed = path
            else:
                index._index.load(str(path))
        index._rerank.moved_to(directory)
        if index._index.ndim != dim:
            raise damaged(path, f"usearch opened it with {index._index.ndim} dimensions, the manifest says {dim}")
        return index
