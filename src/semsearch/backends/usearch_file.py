"""usearch's index file, read by semsearch itself: checked whole before usearch sees it, and its vectors read by key.

usearch's ``view()`` trusts every byte of the file, so ``check_index_file`` refuses anything
this backend would not have written. Once checked, ``MappedRows`` reads the vectors straight
out of the mapped file: usearch's own ``get`` hands back one array per key (about 7 microseconds
a vector), which made an exact scan over a filter's matches cost more than the search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semsearch.backends.base import missing_vector
from semsearch.backends.checks import FileBytes, all_distinct, chunks, finite_bfloat16, finite_floats

# The scalar types the backend stores vectors in: usearch's code for each (index_plugins.hpp, scalar_kind_t,
# from version 2.10), its bytes per dimension, and the NumPy type its vectors are checked as (None: no NaN in it).
DTYPES: dict[str, tuple[int, int, str | None]] = {
    "f64": (10, 8, "<f8"), "f32": (11, 4, "<f4"), "f16": (12, 2, "<f2"), "bf16": (4, 2, "bf16"), "i8": (23, 1, None),
}

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
        offsets, end = _node_offsets(file.position, levels, connectivity)
        if end != file.size:
            raise file.fail(f"{size:,} nodes end at byte {end:,}, the file has {file.size:,}")
        words = _word_views(file)
        keys = _gather_u64(words, offsets)
        free = keys == FREE_KEY
        if int(free.sum()) != deleted:
            raise file.fail(f"{int(free.sum()):,} removed nodes, the header says {deleted:,}")
        live_keys = keys[~free]
        if len(live_keys) and (live_keys.max() >= 2**63 or not all_distinct(live_keys)):
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


def _node_offsets(first: int, levels: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """Where each node starts, from the first node's byte and every node's level, and where the last ends: a node is
    its u64 key, i16 level, the level-0 list (2 * connectivity slots) and one list of ``connectivity`` per level above."""
    node_bytes = 10 + (4 + 8 * connectivity) + levels * (4 + 4 * connectivity)
    offsets = first + np.concatenate([[0], np.cumsum(node_bytes)[:-1]]).astype(np.int64)
    return offsets, int(offsets[-1] + node_bytes[-1]) if len(levels) else first


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


class MappedRows:
    """The vectors of a checked index.usearch, by key, gathered from the memory-mapped file.

    The file holds every slot's vector first, in slot order, then each node's key in the graph;
    the keys are read once here, sorted, and looked up per call. Only for a file
    ``check_index_file`` passed, and only for the float types (i8 needs usearch's own scaling).
    """

    def __init__(self, path: Path, dim: int, dtype: str) -> None:
        file = FileBytes(path)
        rows, columns = file.unpack(0, "<2I", "the matrix dimensions")
        head = 8 + rows * columns
        size = file.unpack(head + HEAD_BYTES, "<Q", "the graph header")[0]
        graph_header = head + HEAD_BYTES + 40
        levels = file.array(graph_header, "<i2", size, "the node levels").astype(np.int64)
        connectivity = file.unpack(head + HEAD_BYTES + 8, "<Q", "the graph header")[0]
        offsets, _ = _node_offsets(graph_header + 2 * size, levels, connectivity)
        keys = _gather_u64(_word_views(file), offsets) if size else np.zeros(0, dtype=np.uint64)
        live = np.flatnonzero(keys != FREE_KEY)
        order = np.argsort(keys[live], kind="stable")
        self._keys = keys[live][order].astype(np.int64)
        self._slots = live[order]
        self._dtype = dtype
        stored = "<u2" if dtype == "bf16" else DTYPES[dtype][2]
        self._vectors = file.array(8, stored, rows * dim, "the vectors").reshape(rows, dim)
        self._file = file

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of ``ids``, in order, as stored (bfloat16 widened to float32, which NumPy lacks);
        a key the file does not hold is a damaged collection."""
        ids = np.asarray(ids, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self._keys, ids), max(len(self._keys) - 1, 0))
        found = self._keys[positions] == ids if len(self._keys) else np.zeros(len(ids), dtype=bool)
        if not found.all():
            raise missing_vector("usearch", int(ids[np.flatnonzero(~found)[0]]))
        rows = self._vectors[self._slots[positions]]
        if self._dtype == "bf16":
            return (rows.astype(np.uint32) << np.uint32(16)).view(np.float32)
        return rows

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """The float32 vectors of ``ids``, in order."""
        return np.asarray(self.rows(ids), dtype=np.float32)
