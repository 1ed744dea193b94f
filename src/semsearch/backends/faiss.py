"""faiss: any index_factory string (``IVF4096,Flat``, ``IVF4096,SQ8``, ``HNSW32``, ``HNSW32,SQ8``, ``IVF4096,PQ64``...).

Indexes that must be trained (IVF, PQ, SQ) buffer the first ``train_size`` vectors added,
train on them, then index them and everything after; a build that adds fewer trains on
what it has when it is saved or first searched. Inner product on L2-normalised vectors,
so a score is a cosine similarity (approximate, for quantised codes). Opened memory-mapped
(read-only), the codes stay in the file and only the small structures are read.

Over quantised codes a score is approximate; the search parameter ``rerank=N`` fetches N
candidates and scores them on the collection's float16 vectors (vectors.npy, which this
backend always has beside it), as issue 12's HNSW over SQ8 codes is measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import MISSING_ID, BackendParamError, ParamSpec, VectorIndex, as_ids, as_queries
from semsearch.backends.checks import checked_once, damaged, library_errors
from semsearch.backends.faiss_file import SQ_CODE_SIZES, check_index_file
from semsearch.backends.rerank import RERANK, StoredRerank
from semsearch.errors import CollectionError, SemsearchError, import_optional

DEFAULTS: dict[str, Any] = {"index": "IVF1024,Flat", "train_size": 200_000}
# Search-time parameters faiss's ParameterSpace knows, with their defaults; an index takes the ones that apply to it.
SEARCH_DEFAULTS: dict[str, int] = {"nprobe": 32, "efSearch": 64}
PARAM_SCHEMA: dict[str, ParamSpec] = {
    "index": ParamSpec(str, maximum=200),
    "train_size": ParamSpec(int, 1, 1_000_000_000),
    "nprobe": ParamSpec(int, 1, 65_536),
    "efSearch": ParamSpec(int, 1, 100_000),
    # HNSW only: the graph's construction effort (faiss's default 40), and candidates re-ranked on vectors.npy.
    "efConstruction": ParamSpec(int, 1, 100_000),
    "rerank": RERANK,
}
# The kinds of faiss index this backend builds and opens: those whose files check_index_file can check
# whole before faiss reads them. faiss's own reader trusts some of their numbers (an IVF's quantizer
# may hold more centroids than the index has lists), so a kind it cannot check is refused when built.
KINDS = {
    "IndexFlat": "Flat", "IndexFlatIP": "Flat", "IndexHNSWFlat": "HNSW<M>", "IndexHNSWSQ": "HNSW<M>,SQ<4|6|8|fp16|bf16>",
    "IndexIVFFlat": "IVF<n>,Flat",
    "IndexIVFScalarQuantizer": "IVF<n>,SQ<4|6|8|fp16|bf16>", "IndexIVFPQ": "IVF<n>,PQ<m>",
}


def _faiss() -> Any:
    return import_optional("faiss", "faiss-cpu", "faiss", "The faiss backend")


class FaissIndex(VectorIndex):
    name = "faiss"
    keeps_vectors = False
    search_params = tuple(SEARCH_DEFAULTS)
    param_schema = PARAM_SCHEMA

    def __init__(self, dim: int, **params: Any) -> None:
        super().__init__(dim, **{**DEFAULTS, **params})
        faiss = _faiss()
        self._faiss = faiss
        try:
            index = faiss.index_factory(dim, str(self.params["index"]), faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as error:
            raise SemsearchError(f"faiss cannot make an index from {self.params['index']!r}: {_first_line(error)}") from None
        _check_kind(faiss, index, str(self.params["index"]))
        # IVF indexes keep ids themselves; the others need a map from their positions to our ids.
        self._index = index if faiss.try_extract_index_ivf(index) is not None else faiss.IndexIDMap2(index)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._read_only = False
        self._rerank = StoredRerank()
        self._settle_search_params(params)
        if "efConstruction" in self.params:
            hnsw = _hnsw_of(faiss, self._index)
            if hnsw is None:
                raise SemsearchError(f"the faiss index {self.params['index']!r} has no parameter efConstruction (HNSW only)")
            hnsw.efConstruction = int(self.params["efConstruction"])

    def _settle_search_params(self, given: dict[str, Any]) -> None:
        """Keep the search parameters this kind of index has; refuse one given for a kind that has not."""
        space = self._faiss.ParameterSpace()
        applicable = []
        for name, default in SEARCH_DEFAULTS.items():
            value = int(self.params.get(name, default))
            try:
                space.set_index_parameter(self._index, name, value)
            except RuntimeError:
                if name in given:
                    raise SemsearchError(f"the faiss index {self.params['index']!r} has no parameter {name}") from None
                self.params.pop(name, None)
                continue
            self.params[name] = value
            applicable.append(name)
        self.search_params = (*applicable, "rerank")  # type: ignore[misc]

    def files_moved_to(self, directory: Path) -> None:
        self._rerank.moved_to(directory)

    def __len__(self) -> int:
        return int(self._index.ntotal) + sum(len(ids) for ids, _ in self._pending)

    def _check_writable(self) -> None:
        if self._read_only:
            raise ValueError("this faiss index is memory-mapped read-only; load it with mmap=False to change it")

    def _use_threads(self) -> None:
        if self.threads:
            self._faiss.omp_set_num_threads(self.threads)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._check_writable()
        ids, vectors = as_ids(ids), as_queries(vectors, self.dim)
        self._use_threads()
        if self._index.is_trained:
            self._index.add_with_ids(vectors, ids)
            return
        self._pending.append((ids, vectors))
        if sum(len(pending_ids) for pending_ids, _ in self._pending) >= int(self.params["train_size"]):
            self._train()

    def _train(self) -> None:
        """Train on the buffered vectors, then index them."""
        if not self._pending:
            return
        ids = np.concatenate([pending_ids for pending_ids, _ in self._pending])
        vectors = np.concatenate([pending_vectors for _, pending_vectors in self._pending])
        self._pending = []
        try:
            self._index.train(vectors)
        except RuntimeError as error:
            raise SemsearchError(
                f"the faiss index {self.params['index']!r} cannot be trained on {len(vectors):,} vectors "
                f"({_first_line(error)}); choose fewer IVF lists, e.g. IVF{max(1, len(vectors) // 40)},Flat"
            ) from None
        self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        self._check_writable()
        ids = as_ids(ids)
        kept = []
        for pending_ids, pending_vectors in self._pending:
            keep = ~np.isin(pending_ids, ids)
            kept.append((pending_ids[keep], pending_vectors[keep]))
        self._pending = kept
        if self._index.ntotal == 0:
            return
        try:
            self._index.remove_ids(ids)
        except RuntimeError as error:
            raise ValueError(
                f"the faiss index {self.params['index']!r} cannot remove vectors ({_first_line(error)}); "
                "rebuild the collection, or use an IVF index or another backend"
            ) from None

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        queries = as_queries(queries, self.dim)
        self._train()
        self._use_threads()
        space = self._faiss.ParameterSpace()
        for name in self.search_params:
            if name != "rerank":
                space.set_index_parameter(self._index, name, int(self.search_param(params, name)))
        rerank = int(params.get("rerank", self.params.get("rerank", 0)))
        scores, ids = self._index.search(queries, max(k, rerank))
        ids = ids.astype(np.int64)
        if rerank > 0:
            return self._rerank.rerank(queries, ids, k, len(self))
        scores = scores.astype(np.float32)
        scores[ids == MISSING_ID] = -np.inf
        return ids[:, :k], scores[:, :k]

    def save(self, directory: Path) -> list[str]:
        self._train()
        self._faiss.write_index(self._index, str(directory / self.file_name))
        return [self.file_name]

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> FaissIndex:
        """Open a saved index, after checking its whole file against the manifest (``check_index_file``)."""
        path = directory / f"index.{cls.name}"
        try:
            index = cls(dim, **params)
        except (BackendParamError, SemsearchError) as error:
            raise CollectionError(f"{directory}: {error}") from None
        faiss = index._faiss
        kind = type(faiss.downcast_index(index._index.index if isinstance(index._index, faiss.IndexIDMap2) else index._index)).__name__
        checked_once([path], {"backend": cls.name, "dim": dim, "kind": kind}, lambda: check_index_file(path, dim=dim, kind=kind))
        with library_errors(path, cls.name):
            if mmap:
                # IO_FLAG_MMAP_IFC maps the codes of IVF lists and of flat storage (HNSW's too) in place;
                # the older IO_FLAG_MMAP maps only IVF lists, and searched them ~5 times slower.
                index._index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
                index._read_only = True
            else:
                index._index = faiss.read_index(str(path))
        index._rerank.moved_to(directory)
        if index._index.d != dim:
            raise damaged(path, f"faiss opened it with {index._index.d} dimensions, the manifest says {dim}")
        return index


def _check_kind(faiss: Any, index: Any, spec: str) -> None:
    """Refuse a factory string whose index (or IVF quantizer, or HNSW storage) check_index_file cannot check."""
    parts = [faiss.downcast_index(index)]
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        parts.append(faiss.downcast_index(ivf.quantizer))
    if type(parts[0]).__name__ in ("IndexHNSWFlat", "IndexHNSWSQ"):
        parts.append(faiss.downcast_index(parts[0].storage))
    kinds = [type(part).__name__ for part in parts]
    inner_flat = all(kind in ("IndexFlat", "IndexFlatIP") for kind in kinds[1:]) or kinds == ["IndexHNSWSQ", "IndexScalarQuantizer"]
    quantised = parts[-1] if kinds[-1] in ("IndexIVFScalarQuantizer", "IndexScalarQuantizer") else None
    sq_ok = quantised is None or quantised.sq.qtype in SQ_CODE_SIZES
    if kinds[0] not in KINDS or not inner_flat or not sq_ok:
        raise SemsearchError(
            f"the faiss index {spec!r} ({' over '.join(kinds)}) is of a kind semsearch cannot check when it opens a collection; "
            f"use one of: {', '.join(sorted(set(KINDS.values())))}"
        )


def _hnsw_of(faiss: Any, index: Any) -> Any:
    """The HNSW graph of an index (under its id map), or None for other kinds."""
    inner = faiss.downcast_index(index.index if isinstance(index, faiss.IndexIDMap2) else index)
    return getattr(inner, "hnsw", None)


def _first_line(error: Exception) -> str:
    """faiss's C++ errors carry a file and a line number first; the reason is at the end."""
    text = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
    return text.split(": ", 1)[-1] if "Error in" in text else text
