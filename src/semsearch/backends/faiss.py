"""faiss: any index_factory string (``IVF4096,Flat``, ``IVF4096,SQ8``, ``HNSW32``, ``IVF4096,PQ64``...).

Indexes that must be trained (IVF, PQ, SQ) buffer the first ``train_size`` vectors added,
train on them, then index them and everything after; a build that adds fewer trains on
what it has when it is saved or first searched. Inner product on L2-normalised vectors,
so a score is a cosine similarity (approximate, for quantised codes). Opened memory-mapped
(read-only), the codes stay in the file and only the small structures are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import MISSING_ID, BackendParamError, ParamSpec, VectorIndex, as_ids, as_queries
from semsearch.backends.checks import FileBytes, chunks, checked_once, damaged, finite_floats, library_errors
from semsearch.errors import CollectionError, SemsearchError, import_optional

DEFAULTS: dict[str, Any] = {"index": "IVF1024,Flat", "train_size": 200_000}
# Search-time parameters faiss's ParameterSpace knows, with their defaults; an index takes the ones that apply to it.
SEARCH_DEFAULTS: dict[str, int] = {"nprobe": 32, "efSearch": 64}
PARAM_SCHEMA: dict[str, ParamSpec] = {
    "index": ParamSpec(str, maximum=200),
    "train_size": ParamSpec(int, 1, 1_000_000_000),
    "nprobe": ParamSpec(int, 1, 65_536),
    "efSearch": ParamSpec(int, 1, 100_000),
}
# The kinds of faiss index this backend builds and opens: those whose files check_index_file can check
# whole before faiss reads them. faiss's own reader trusts some of their numbers (an IVF's quantizer
# may hold more centroids than the index has lists), so a kind it cannot check is refused when built.
KINDS = {
    "IndexFlat": "Flat", "IndexFlatIP": "Flat", "IndexHNSWFlat": "HNSW<M>", "IndexIVFFlat": "IVF<n>,Flat",
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
        self._settle_search_params(params)

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
        self.search_params = tuple(applicable)  # type: ignore[misc]

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
            space.set_index_parameter(self._index, name, int(self.search_param(params, name)))
        scores, ids = self._index.search(queries, k)
        ids = ids.astype(np.int64)
        scores = scores.astype(np.float32)
        scores[ids == MISSING_ID] = -np.inf
        return ids, scores

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
        if index._index.d != dim:
            raise damaged(path, f"faiss opened it with {index._index.d} dimensions, the manifest says {dim}")
        return index


def _check_kind(faiss: Any, index: Any, spec: str) -> None:
    """Refuse a factory string whose index (or IVF quantizer, or HNSW storage) check_index_file cannot check."""
    parts = [faiss.downcast_index(index)]
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        parts.append(faiss.downcast_index(ivf.quantizer))
    if type(parts[0]).__name__ == "IndexHNSWFlat":
        parts.append(faiss.downcast_index(parts[0].storage))
    kinds = [type(part).__name__ for part in parts]
    inner_flat = all(kind in ("IndexFlat", "IndexFlatIP") for kind in kinds[1:])
    sq_ok = type(parts[0]).__name__ != "IndexIVFScalarQuantizer" or parts[0].sq.qtype in SQ_CODE_SIZES
    if kinds[0] not in KINDS or not inner_flat or not sq_ok:
        raise SemsearchError(
            f"the faiss index {spec!r} ({' over '.join(kinds)}) is of a kind semsearch cannot check when it opens a collection; "
            f"use one of: {', '.join(sorted(set(KINDS.values())))}"
        )


# -- the file format (faiss 1.x, impl/index_read.cpp and index_write.cpp), for the kinds in KINDS --
#
# Little-endian, read front to back. An index starts with a fourcc and the header
# {i32 d, i64 ntotal, i64 dummy, i64 dummy, u8 is_trained, i32 metric}; a vector is {u64 n, n items}.
#   IxM2  (IndexIDMap2)       header, the inner index, vector<i64> ids
#   IxFI  (IndexFlatIP)       header, {u64 n, 4n bytes} codes: the float32 vectors
#   IHNf  (IndexHNSWFlat)     header, HNSW {vector<f64> assign_probas, vector<i32> cum_nneighbor_per_level,
#                             vector<i32> levels, vector<u64> offsets, vector<i32> neighbors, i32 entry_point,
#                             i32 max_level, i32 efConstruction, i32 efSearch, i32 unused}, the storage (IxFI)
#   IwFl  (IndexIVFFlat)      IVF header {header, u64 nlist, u64 nprobe, the quantizer (IxFI), direct map
#   IwSq  (...ScalarQuantizer)  {u8 kind, vector<i64>}}, then for IwSq the quantizer {i32 qtype, i32 rangestat,
#   IwPQ  (IndexIVFPQ)          f32 rangestat_arg, u64 d, u64 code_size, vector<f32> trained}, u64 code_size,
#                             u8 by_residual; for IwPQ u8 by_residual, u64 code_size, PQ {u64 d, M, nbits,
#                             vector<f32> centroids}; then the inverted lists:
#   ilar                      u64 nlist, u64 code_size, "full" vector<u64> sizes or "sprs" vector<u64> (list, size)
#                             pairs, then each non-empty list's codes and i64 ids

METRIC_INNER_PRODUCT = 0
HEADER = "<iqqqBi"
# ScalarQuantizer kinds (QT_8bit, QT_4bit, QT_fp16, QT_6bit, QT_bf16): code bytes and trained floats for d dimensions.
SQ_CODE_SIZES = {0: lambda d: d, 1: lambda d: (d + 1) // 2, 4: lambda d: 2 * d, 6: lambda d: (d * 6 + 7) // 8, 7: lambda d: 2 * d}
SQ_TRAINED = {0: lambda d: 2 * d, 1: lambda d: 2 * d, 4: lambda d: 0, 6: lambda d: 2 * d, 7: lambda d: 0}
# What each kind of index is written as: the top fourcc (and the inner one, under an IndexIDMap2).
FOURCCS = {
    "IndexFlat": ("IxM2", "IxFI"), "IndexFlatIP": ("IxM2", "IxFI"), "IndexHNSWFlat": ("IxM2", "IHNf"),
    "IndexIVFFlat": ("IwFl",), "IndexIVFScalarQuantizer": ("IwSq", "IwSQ"), "IndexIVFPQ": ("IwPQ",),
}
MAX_LISTS = 1 << 24
MAX_HNSW_LEVELS = 64


class _FaissFile:
    def __init__(self, file: FileBytes, dim: int) -> None:
        self.file = file
        self.dim = dim

    def fourcc(self) -> str:
        raw = self.file.read("<4s", "a fourcc")[0]
        return raw.decode("latin-1")

    def header(self, what: str) -> tuple[int, bool]:
        d, ntotal, _, _, trained, metric = self.file.read(HEADER, f"the {what} header")
        if d != self.dim:
            raise self.file.fail(f"{what} of {d:,} dimensions, the manifest says {self.dim}")
        if ntotal < 0 or trained not in (0, 1) or metric != METRIC_INNER_PRODUCT:
            raise self.file.fail(f"{what} with {ntotal:,} vectors, trained byte {trained}, metric {metric}")
        if ntotal and not trained:
            raise self.file.fail(f"an untrained {what} that holds vectors")
        return ntotal, bool(trained)

    def vector(self, dtype: str, what: str, count: int | None = None) -> np.ndarray:
        (length,) = self.file.read("<Q", f"the length of {what}")
        if count is not None and length != count:
            raise self.file.fail(f"{what} has {length:,} items, expected {count:,}")
        item = np.dtype(dtype).itemsize
        if length > (self.file.size - self.file.position) // item:
            raise self.file.fail(f"{what} of {length:,} items runs past the end of the file")
        return self.file.take(dtype, length, what)

    def flat(self, what: str, count: int | None = None) -> int:
        if self.fourcc() != "IxFI":
            raise self.file.fail(f"{what} is not a flat inner-product index")
        ntotal, _ = self.header(what)
        if count is not None and ntotal != count:
            raise self.file.fail(f"{what} holds {ntotal:,} vectors, expected {count:,}")
        (length,) = self.file.read("<Q", f"the length of the {what}'s vectors")
        if length != ntotal * self.dim:
            raise self.file.fail(f"{what} has {length:,} floats for {ntotal:,} vectors of {self.dim}")
        if not finite_floats(self.file.take("<f4", length, f"the {what}'s vectors")):
            raise self.file.fail(f"{what} holds NaN or infinite values")
        return ntotal

    def hnsw(self, ntotal: int) -> None:
        fail = self.file.fail
        probas = self.vector("<f8", "assign_probas")
        cumulative = self.vector("<i4", "cum_nneighbor_per_level").astype(np.int64)
        levels = self.vector("<i4", "levels", ntotal).astype(np.int64)
        offsets = self.vector("<u8", "offsets", ntotal + 1)
        neighbours = self.vector("<i4", "neighbors").astype(np.int64)
        entry, max_level, ef_construction, ef_search, _ = self.file.read("<5i", "the HNSW settings")
        if not 1 <= len(cumulative) <= MAX_HNSW_LEVELS + 1 or cumulative[0] != 0 or (np.diff(cumulative) < 0).any():
            raise fail("cum_nneighbor_per_level is not a growing count from 0")
        if len(probas) + 1 != len(cumulative) or not finite_floats(probas) or (probas < 0).any() or (probas > 1).any():
            raise fail("assign_probas do not match the levels")
        if not 1 <= ef_construction <= 100_000 or ef_search < 1:
            raise fail(f"efConstruction {ef_construction}, efSearch {ef_search}")
        if ntotal == 0:
            if (entry, max_level) != (-1, -1) or len(neighbours) or offsets[0]:
                raise fail("an empty HNSW graph with an entry point or links")
            return
        if levels.min() < 1 or levels.max() >= len(cumulative):
            raise fail(f"node levels from {levels.min()} to {levels.max()} for {len(cumulative) - 1} levels")
        spans = cumulative[levels]
        if offsets[0] != 0 or not np.array_equal(np.diff(offsets.astype(np.int64)), spans) or int(offsets[-1]) != len(neighbours):
            raise fail("HNSW offsets do not match the node levels")
        if max_level != levels.max() - 1 or not 0 <= entry < ntotal or levels[entry] - 1 != max_level:
            raise fail(f"top level {max_level}, entry point {entry:,} of {ntotal:,} nodes")
        if len(neighbours) and (neighbours.min() < -1 or neighbours.max() >= ntotal):
            raise fail(f"a link to node {int(neighbours.max() if neighbours.max() >= ntotal else neighbours.min()):,} of {ntotal:,}")
        # A link on level l must lead to a node that is on level l too (levels[] counts them from 1).
        starts = offsets.astype(np.int64)
        for part in chunks(ntotal, 4096):
            links = neighbours[starts[part.start] : starts[part.stop]]
            position_in_node = np.arange(starts[part.start], starts[part.stop]) - np.repeat(starts[part], spans[part])
            link_level = np.searchsorted(cumulative, position_in_node, side="right") - 1
            linked = links >= 0
            if (levels[links[linked]] <= link_level[linked]).any():
                raise fail("a link to a node that is not on the link's level")

    def ivf_header(self, what: str) -> tuple[int, int]:
        ntotal, _ = self.header(what)
        nlist, nprobe = self.file.read("<QQ", "the IVF header")
        if not 1 <= nlist <= MAX_LISTS or nprobe < 1:
            raise self.file.fail(f"{nlist:,} lists, nprobe {nprobe:,}")
        self.flat("the coarse quantizer", nlist)
        (kind,) = self.file.read("<B", "the direct map kind")
        mapped = self.vector("<i8", "the direct map")
        if kind != 0 or len(mapped):
            raise self.file.fail("a direct map; this backend writes none")
        return ntotal, nlist

    def inverted_lists(self, ntotal: int, nlist: int, code_size: int, floats: bool) -> None:
        fail = self.file.fail
        if self.fourcc() != "ilar":
            raise fail("inverted lists that are not stored in the file")
        lists, file_code_size = self.file.read("<QQ", "the inverted lists' header")
        if lists != nlist or file_code_size != code_size:
            raise fail(f"{lists:,} inverted lists of {file_code_size:,}-byte codes; the index has {nlist:,} of {code_size:,}")
        layout = self.fourcc()
        if layout == "full":
            sizes = self.vector("<u8", "the list sizes", nlist).astype(np.int64)
        elif layout == "sprs":
            pairs = self.vector("<u8", "the list sizes")
            if len(pairs) % 2:
                raise fail("an odd number of sparse list sizes")
            pairs = pairs.reshape(-1, 2)
            if len(pairs) and (pairs[:, 0].max() >= nlist or len(np.unique(pairs[:, 0])) != len(pairs)):
                raise fail("sparse list sizes for lists that do not exist")
            sizes = np.zeros(nlist, dtype=np.int64)
            sizes[pairs[:, 0].astype(np.int64)] = pairs[:, 1].astype(np.int64) if len(pairs) else 0
        else:
            raise fail(f"inverted lists stored as {layout!r}")
        if (sizes < 0).any() or int(sizes.sum()) != ntotal:
            raise fail(f"inverted lists holding {int(sizes.sum()):,} vectors, the index says {ntotal:,}")
        remaining = self.file.size - self.file.position
        if ntotal * (code_size + 8) > remaining:
            raise fail(f"{ntotal:,} codes and ids do not fit in the rest of the file")
        for size in sizes[sizes > 0].tolist():
            codes = self.file.take(np.uint8, size * code_size, "a list's codes")
            if floats and not finite_floats(codes.view("<f4")):
                raise fail("an inverted list holds NaN or infinite values")
            ids = self.file.take("<i8", size, "a list's ids")
            if ids.min() < 0:
                raise fail("an inverted list holds a negative id")


def check_index_file(path: Path, *, dim: int, kind: str) -> None:
    """Refuse (one IndexFileError line) an index.faiss that is not the kind of index the manifest's
    factory string makes, for its dimension, exactly as this backend writes it."""
    with FileBytes(path) as file:
        reader = _FaissFile(file, dim)
        expected = FOURCCS.get(kind)
        if expected is None:
            raise file.fail(f"a {kind}; semsearch checks only {', '.join(sorted(FOURCCS))}")
        top = reader.fourcc()
        if expected[0] == "IxM2":
            if top != "IxM2":
                raise file.fail(f"a {top!r} index where the manifest's factory string makes an IndexIDMap2 over {kind}")
            ntotal, _ = reader.header("id map")
            if expected[1] == "IxFI":
                reader.flat("the flat index", ntotal)
            else:
                if reader.fourcc() != "IHNf":
                    raise file.fail("an id map over something else than the HNSW index the manifest names")
                count, _ = reader.header("HNSW index")
                if count != ntotal:
                    raise file.fail(f"an HNSW index of {count:,} vectors under an id map of {ntotal:,}")
                reader.hnsw(ntotal)
                reader.flat("the HNSW storage", ntotal)
            ids = reader.vector("<i8", "the id map", ntotal)
            if len(ids) and ids.min() < 0:
                raise file.fail("the id map holds a negative id")
        elif top not in expected:
            raise file.fail(f"a {top!r} index where the manifest's factory string makes a {kind}")
        elif kind == "IndexIVFFlat":
            ntotal, nlist = reader.ivf_header("IVF index")
            reader.inverted_lists(ntotal, nlist, 4 * dim, floats=True)
        elif kind == "IndexIVFScalarQuantizer":
            ntotal, nlist = reader.ivf_header("IVF index")
            qtype, rangestat, _, sq_dim, sq_code_size = file.read("<iifQQ", "the scalar quantizer")
            if qtype not in SQ_CODE_SIZES or not 0 <= rangestat <= 3 or sq_dim != dim:
                raise file.fail(f"a scalar quantizer of kind {qtype}, range statistic {rangestat}, {sq_dim:,} dimensions")
            if sq_code_size != SQ_CODE_SIZES[qtype](dim):
                raise file.fail(f"{sq_code_size:,}-byte scalar codes; kind {qtype} makes {SQ_CODE_SIZES[qtype](dim):,}")
            trained = reader.vector("<f4", "the quantizer's ranges", SQ_TRAINED[qtype](dim))
            if not finite_floats(trained):
                raise file.fail("the quantizer's ranges hold NaN or infinite values")
            (code_size,) = file.read("<Q", "the code size")
            if code_size != sq_code_size:
                raise file.fail(f"{code_size:,}-byte codes for a quantizer of {sq_code_size:,}")
            if top == "IwSq" and file.one("<B", "by_residual") not in (0, 1):
                raise file.fail("a by_residual byte that is not 0 or 1")
            reader.inverted_lists(ntotal, nlist, code_size, floats=False)
        else:  # IndexIVFPQ
            ntotal, nlist = reader.ivf_header("IVF index")
            residual, code_size = file.read("<BQ", "the PQ settings")
            pq_dim, subquantizers, bits = file.read("<3Q", "the product quantizer")
            if residual not in (0, 1) or pq_dim != dim or not 1 <= subquantizers <= dim or dim % subquantizers or not 1 <= bits <= 16:
                raise file.fail(f"a product quantizer of {subquantizers:,} x {bits} bits over {pq_dim:,} dimensions")
            if code_size != (subquantizers * bits + 7) // 8:
                raise file.fail(f"{code_size:,}-byte codes for {subquantizers} x {bits} bits")
            centroids = reader.vector("<f4", "the PQ centroids", dim * (1 << bits))
            if not finite_floats(centroids):
                raise file.fail("the PQ centroids hold NaN or infinite values")
            reader.inverted_lists(ntotal, nlist, code_size, floats=False)
        file.at_end(f"{kind}")


def _first_line(error: Exception) -> str:
    """faiss's C++ errors carry a file and a line number first; the reason is at the end."""
    text = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
    return text.split(": ", 1)[-1] if "Error in" in text else text
