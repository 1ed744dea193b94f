"""faiss's index file read and checked by us before faiss reads it (impl/index_read.cpp), for the kinds semsearch builds.

faiss does not check, for instance, that an IVF's quantizer holds as many centroids as there are
lists, and it crashed on a truncated HNSW file: a crafted file must be refused first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semsearch.backends.checks import FileBytes, all_distinct, chunks, finite_bfloat16, finite_floats

# -- the file format (faiss 1.x, impl/index_read.cpp and index_write.cpp), for the kinds in KINDS --
#
# Little-endian, read front to back. An index starts with a fourcc and the header
# {i32 d, i64 ntotal, i64 dummy, i64 dummy, u8 is_trained, i32 metric}; a vector is {u64 n, n items}.
#   IxM2  (IndexIDMap2)       header, the inner index, vector<i64> ids
#   IxFI  (IndexFlatIP)       header, {u64 n, 4n bytes} codes: the float32 vectors
#   IHNf  (IndexHNSWFlat)     header, HNSW {vector<f64> assign_probas, vector<i32> cum_nneighbor_per_level,
#                             vector<i32> levels, vector<u64> offsets, vector<i32> neighbors, i32 entry_point,
#                             i32 max_level, i32 efConstruction, i32 efSearch, i32 unused}, the storage (IxFI)
#   IHNs  (IndexHNSWSQ)       header, HNSW as above, the storage: IxSQ (IndexScalarQuantizer) header, the scalar
#                             quantizer (as in IwSQ below), vector<u8> codes (ntotal x code_size)
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
    "IndexFlat": ("IxM2", "IxFI"), "IndexFlatIP": ("IxM2", "IxFI"), "IndexHNSWFlat": ("IxM2", "IHNf"), "IndexHNSWSQ": ("IxM2", "IHNs"),
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

    def scalar_quantizer(self) -> tuple[int, int]:
        """The quantizer's settings and ranges (write_ScalarQuantizer); returns (qtype, code size)."""
        file = self.file
        qtype, rangestat, _, sq_dim, sq_code_size = file.read("<iifQQ", "the scalar quantizer")
        if qtype not in SQ_CODE_SIZES or not 0 <= rangestat <= 3 or sq_dim != self.dim:
            raise file.fail(f"a scalar quantizer of kind {qtype}, range statistic {rangestat}, {sq_dim:,} dimensions")
        if sq_code_size != SQ_CODE_SIZES[qtype](self.dim):
            raise file.fail(f"{sq_code_size:,}-byte scalar codes; kind {qtype} makes {SQ_CODE_SIZES[qtype](self.dim):,}")
        trained = self.vector("<f4", "the quantizer's ranges", SQ_TRAINED[qtype](self.dim))
        if not finite_floats(trained):
            raise file.fail("the quantizer's ranges hold NaN or infinite values")
        return qtype, sq_code_size

    def sq_storage(self, ntotal: int) -> None:
        """An HNSW graph's storage: ntotal scalar codes (float16 or bfloat16 ones must be finite)."""
        if self.fourcc() != "IxSQ":
            raise self.file.fail("HNSW storage that is not a scalar quantizer")
        count, _ = self.header("the HNSW storage")
        if count != ntotal:
            raise self.file.fail(f"HNSW storage of {count:,} vectors for {ntotal:,} nodes")
        qtype, code_size = self.scalar_quantizer()
        codes = self.vector("<u1", "the storage's codes", ntotal * code_size)
        if qtype == 4 and not finite_floats(codes.view("<f2")):
            raise self.file.fail("the storage's float16 codes hold NaN or infinite values")
        if qtype == 7 and not finite_bfloat16(codes.view("<u2")):
            raise self.file.fail("the storage's bfloat16 codes hold NaN or infinite values")

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
            if len(pairs) and (pairs[:, 0].max() >= nlist or not all_distinct(pairs[:, 0])):
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
                if reader.fourcc() != expected[1]:
                    raise file.fail("an id map over something else than the HNSW index the manifest names")
                count, _ = reader.header("HNSW index")
                if count != ntotal:
                    raise file.fail(f"an HNSW index of {count:,} vectors under an id map of {ntotal:,}")
                reader.hnsw(ntotal)
                if expected[1] == "IHNf":
                    reader.flat("the HNSW storage", ntotal)
                else:
                    reader.sq_storage(ntotal)
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
            _, sq_code_size = reader.scalar_quantizer()
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


