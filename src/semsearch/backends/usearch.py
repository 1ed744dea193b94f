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

from semsearch.backends.base import ParamSpec, VectorIndex, as_ids, as_queries, missing_vector, padded_results
from semsearch.backends.rerank import RERANK, StoredRerank
from semsearch.backends.checks import (
    FileBytes, chunks, checked_once, damaged, finite_bfloat16, finite_floats, library_errors,
)

# From BENCHMARKS.md ("The default's expansion_search, 1.1M"): on 1.1M headlines this graph gave the best recall
# for its speed and the only size within target (1.29 GB); expansion_search 160 is the smallest measured that
# reaches recall@10 0.95 there (0.955 at 557 QPS, p99 2.5 ms; 64 gave 0.913). Lower it per query for speed.
DEFAULTS: dict[str, Any] = {"dtype": "f16", "connectivity": 16, "expansion_add": 128, "expansion_search": 160}
# The scalar types the backend stores vectors in: usearch's code for each (index_plugins.hpp, scalar_kind_t,
# from version 2.10), its bytes per dimension, and the NumPy type its vectors are checked as (None: no NaN in it).
DTYPES: dict[str, tuple[int, int, str | None]] = {
    "f64": (10, 8, "<f8"), "f32": (11, 4, "<f4"), "f16": (12, 2, "<f2"), "bf16": (4, 2, "bf16"), "i8": (23, 1, None),
}
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


# Collections of at most this many documents are searched by brute force over the index's vectors.
EXACT_SEARCH_LIMIT = 20_000


class UsearchIndex(VectorIndex):
    name = "usearch"
    keeps_vectors = True
    search_params = ("expansion_search", "rerank")
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
        found = self._index.get(keys, dtype=np.float32)
        found = found if isinstance(found, tuple) else (found,)
        for key, vector in zip(keys.tolist(), found):
            if vector is None:
                raise missing_vector(self.name, key)
        return np.vstack(found)

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
            else:
                index._index.load(str(path))
        index._rerank.moved_to(directory)
        if index._index.ndim != dim:
            raise damaged(path, f"usearch opened it with {index._index.ndim} dimensions, the manifest says {dim}")
        return index


# -- the file format (usearch 2.x, include/usearch/index_dense.hpp and index.hpp) --
#
#   u32 rows, u32 bytes per vector; rows vectors                      (index_dense_gt::save_to_stream)
#   64-byte head: "usearch", u16 major, minor, patch; u8 metric, scalar, key, slot kinds;
#                 u64 present, deleted, dimensions; u8 multi          (index_dense_head_t)
#   u64 size, connectivity, connectivity_base, max_level, entry_slot  (index_serialized_header_t)
#   i16 level of each node; then each node: u64 key, i16 level, {u32 count, connectivity_base u32 slots}
#   on level 0 and {u32 count, connectivity u32 slots} on each level above
#
# usearch's view() trusts all of it: the head's metric byte picks the distance function (one
# flipped byte gave SIGSEGV, SIGILL or SIGFPE on search), and neighbour slots index memory.

HEAD_BYTES = 64
GRAPH_HEADER = "<5Q"
METRIC_COS = ord("c")
KEY_U64, SLOT_U32 = 14, 15
FREE_KEY = 2**64 - 1
# Scalar kinds before usearch 2.10 (an enum without explicit values): old code -> new code.
PRE_2_10_KINDS = {1: 1, 2: 2, 3: 3, 4: 10, 5: 11, 6: 12, 7: 13, 8: 14, 9: 15, 10: 17, 11: 20, 12: 21, 13: 22, 14: 23}
MAX_LEVEL = 64


def check_index_file(path: Path, *, dim: int, dtype: str, connectivity: int) -> None:
    """Refuse (one IndexFileError line) an index.usearch that is not what this backend writes for the manifest."""
    scalar_kind, scalar_bytes, vector_type = DTYPES[dtype]
    with FileBytes(path) as file:
        rows, columns = file.read("<2I", "the matrix dimensions")
        if columns != dim * scalar_bytes:
            raise file.fail(f"{columns:,} bytes per vector; {dim} dimensions in {dtype} take {dim * scalar_bytes:,}")
        vectors_at = file.position
        file.skip(rows * columns, f"{rows:,} vectors")
        head = file.position
        magic, major, minor, _patch, metric, scalar, key, slot = file.read("<7s3H4B", "the usearch header")
        present, deleted, dimensions, multi = file.read("<3QB", "the usearch header")
        file.position = head + HEAD_BYTES
        if magic != b"usearch":
            raise file.fail("no usearch header where the vectors end")
        if major != 2:
            raise file.fail(f"usearch file format {major}.{minor}; this backend reads 2.x")
        if minor < 10:
            scalar, key, slot = (PRE_2_10_KINDS.get(kind, 0) for kind in (scalar, key, slot))
        if metric != METRIC_COS:
            raise file.fail(f"metric {_kind(metric)}; this backend writes cos ({METRIC_COS})")
        if scalar != scalar_kind:
            raise file.fail(f"scalar kind {scalar}; the manifest's dtype {dtype} is {scalar_kind}")
        if (key, slot) != (KEY_U64, SLOT_U32):
            raise file.fail(f"key and slot kinds {key}, {slot}; this backend writes {KEY_U64}, {SLOT_U32}")
        if dimensions != dim:
            raise file.fail(f"{dimensions:,} dimensions, the manifest says {dim}")
        if multi != 0:
            raise file.fail("a multi-vector index; this backend writes one vector per key")
        size, file_connectivity, connectivity_base, max_level, entry_slot = file.read(GRAPH_HEADER, "the graph header")
        if size != rows or present + deleted != size:
            raise file.fail(f"{size:,} nodes, {rows:,} vectors, {present:,} present and {deleted:,} deleted")
        if size == 0:
            file.at_end("empty graph")
            return
        if file_connectivity != connectivity or connectivity_base != 2 * connectivity:
            raise file.fail(
                f"connectivity {file_connectivity}/{connectivity_base}; the manifest's connectivity {connectivity} "
                f"makes {connectivity}/{2 * connectivity}"
            )
        if max_level > MAX_LEVEL or entry_slot >= size:
            raise file.fail(f"top level {max_level:,} and entry node {entry_slot:,} of {size:,} nodes")
        levels = file.take("<i2", size, "the node levels").astype(np.int64)
        if levels.min() < 0 or levels.max() != max_level or levels[entry_slot] != max_level:
            raise file.fail(f"node levels from {levels.min()} to {levels.max()}, top level {max_level}, entry node at {levels[entry_slot]}")
        base_bytes = 4 + 4 * connectivity_base
        level_bytes = 4 + 4 * connectivity
        node_bytes = 10 + base_bytes + levels * level_bytes
        offsets = file.position + np.concatenate([[0], np.cumsum(node_bytes)[:-1]])
        end = int(offsets[-1] + node_bytes[-1])
        if end != file.size:
            raise file.fail(f"{size:,} nodes end at byte {end:,}, the file has {file.size:,}")
        words = _word_views(file)
        keys = _gather_u64(words, offsets)
        free = keys == FREE_KEY
        if int(free.sum()) != deleted:
            raise file.fail(f"{int(free.sum()):,} removed nodes, the header says {deleted:,}")
        live_keys = keys[~free]
        if len(live_keys) and (live_keys.max() >= 2**63 or len(np.unique(live_keys)) != len(live_keys)):
            raise file.fail("keys that are not distinct document ids")
        stored_levels = _gather_u16(file.bytes, offsets + 8).astype(np.int16).astype(np.int64)
        if not np.array_equal(stored_levels, levels):
            raise file.fail("a node's own level differs from the level list")
        _check_neighbours(file, words, offsets + 10, connectivity_base, size, levels, 0)
        for level in range(1, max_level + 1):
            on_level = np.flatnonzero(levels >= level)
            starts = offsets[on_level] + 10 + base_bytes + (level - 1) * level_bytes
            _check_neighbours(file, words, starts, connectivity, size, levels, level)
        if vector_type is not None:
            count = rows * dim
            if vector_type == "bf16":
                sound = finite_bfloat16(file.array(vectors_at, "<u2", count, "the vectors"))
            else:
                sound = finite_floats(file.array(vectors_at, vector_type, count, "the vectors"))
            if not sound:
                raise file.fail("vectors with NaN or infinite values")


def _kind(code: int) -> str:
    return f"{chr(code)!r} ({code})" if 32 < code < 127 else str(code)


def _word_views(file: FileBytes) -> list[np.ndarray]:
    """The file as little-endian u32 words at each of the 4 byte alignments: nodes start anywhere."""
    return [file.array(shift, "<u4", (file.size - shift) // 4, "words") for shift in range(4)]


def _words_at(words: list[np.ndarray], starts: np.ndarray, count: int) -> np.ndarray:
    """``count`` consecutive u32 words from each byte offset in ``starts``, as a (len(starts), count) array."""
    result = np.empty((len(starts), count), dtype=np.uint32)
    shifts = starts % 4
    for shift in range(4):
        chosen = np.flatnonzero(shifts == shift)
        if len(chosen):
            first = (starts[chosen] - shift) // 4
            result[chosen] = words[shift][first[:, None] + np.arange(count)[None, :]]
    return result


def _gather_u64(words: list[np.ndarray], starts: np.ndarray) -> np.ndarray:
    pairs = _words_at(words, starts, 2).astype(np.uint64)
    return pairs[:, 0] | (pairs[:, 1] << np.uint64(32))


def _gather_u16(source: np.ndarray, starts: np.ndarray) -> np.ndarray:
    starts = starts.astype(np.int64)
    return source[starts].astype(np.uint16) | (source[starts + 1].astype(np.uint16) << np.uint16(8))


def _check_neighbours(file: FileBytes, words: list[np.ndarray], starts: np.ndarray, capacity: int, size: int,
                      levels: np.ndarray, level: int) -> None:
    """Each list at ``starts``: a count within its capacity, then that many slots of nodes that exist on ``level``."""
    rows = max(1, (1 << 20) // (capacity + 1))
    for part in chunks(len(starts), rows):
        lists = _words_at(words, starts[part], capacity + 1)
        counts = lists[:, 0].astype(np.int64)
        if counts.max(initial=0) > capacity:
            raise file.fail(f"a level-{level} neighbour list of {counts.max():,} nodes; it holds at most {capacity}")
        used = np.arange(capacity)[None, :] < counts[:, None]
        slots = lists[:, 1:][used].astype(np.int64)
        if len(slots) and slots.max() >= size:
            raise file.fail(f"a level-{level} neighbour {slots.max():,}; there are {size:,} nodes")
        if level and len(slots) and levels[slots].min() < level:
            raise file.fail(f"a level-{level} neighbour that is not on level {level}")
