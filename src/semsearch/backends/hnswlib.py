"""hnswlib: the reference HNSW implementation. Vectors are kept in float32 in the index and handed back.

hnswlib reads its whole file into memory on load (it cannot memory-map), and marks removed
ids as deleted rather than taking them out of the graph; the deleted ids are saved beside
the index so a reopened index knows how many live vectors it holds.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import (
    ParamSpec, VectorIndex, as_ids, as_queries, load_array, missing_vector, padded_results, save_array,
)
from semsearch.backends.checks import FileBytes, check_npy, checked_once, chunks, damaged, finite_floats, library_errors
from semsearch.errors import import_optional

DEFAULTS: dict[str, Any] = {"M": 16, "ef_construction": 100, "ef": 64}
# Room made for this many vectors at first; the graph's capacity doubles whenever it fills.
INITIAL_CAPACITY = 1024
PARAM_SCHEMA: dict[str, ParamSpec] = {
    # M=0 or 1 crashes hnswlib (1 / log(M) is its level multiplier); above 10,000 it caps M itself.
    "M": ParamSpec(int, 2, 1024),
    "ef_construction": ParamSpec(int, 1, 100_000),
    "ef": ParamSpec(int, 1, 100_000),
}


class HnswlibIndex(VectorIndex):
    name = "hnswlib"
    keeps_vectors = True
    search_params = ("ef",)
    self_search_params = {"ef": 32}
    param_schema = PARAM_SCHEMA

    @classmethod
    def saved_files(cls) -> tuple[str, ...]:
        return (f"index.{cls.name}", f"index.{cls.name}.deleted")

    def __init__(self, dim: int, **params: Any) -> None:
        super().__init__(dim, **{**DEFAULTS, **params})
        hnswlib = import_optional("hnswlib", "hnswlib", "hnswlib", "The hnswlib backend")
        self._index = hnswlib.Index(space="cosine", dim=dim)
        self._deleted: set[int] = set()
        # hnswlib crashes when an index is used before init_index or load_index: track it here.
        self._initialised = False

    def _create(self, capacity: int) -> None:
        self._index.init_index(
            max_elements=capacity, ef_construction=int(self.params["ef_construction"]), M=int(self.params["M"])
        )
        self._initialised = True

    def __len__(self) -> int:
        return self._index.element_count - len(self._deleted) if self._initialised else 0

    def _threads(self) -> int:
        return self.threads or -1

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = as_ids(ids), as_queries(vectors, self.dim)
        if not self._initialised:
            self._create(max(INITIAL_CAPACITY, len(ids)))
        needed = self._index.element_count + len(ids)
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
        self._index.add_items(vectors, ids.astype(np.uint64), num_threads=self._threads())
        self._deleted.difference_update(ids.tolist())

    def remove(self, ids: np.ndarray) -> None:
        if not self._initialised:
            return
        present = set(self._index.get_ids_list())
        for document_id in as_ids(ids).tolist():
            if document_id in present and document_id not in self._deleted:
                self._index.mark_deleted(document_id)
                self._deleted.add(document_id)

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        queries = as_queries(queries, self.dim)
        ids, scores = padded_results(len(queries), k)
        available = min(k, len(self))
        if available == 0:
            return ids, scores
        self._index.set_ef(max(int(self.search_param(params, "ef")), available))
        try:
            labels, distances = self._index.knn_query(queries, k=available, num_threads=self._threads())
        except RuntimeError:
            # After removals the graph can hold fewer reachable neighbours than asked for:
            # take what each query can reach, one query at a time.
            return self._search_each(queries, ids, scores, available)
        ids[:, :available] = labels.astype(np.int64)
        scores[:, :available] = 1.0 - distances
        return ids, scores

    def _search_each(self, queries: np.ndarray, ids: np.ndarray, scores: np.ndarray, available: int) -> tuple[np.ndarray, np.ndarray]:
        for row, query in enumerate(queries):
            for count in range(available, 0, -1):
                try:
                    labels, distances = self._index.knn_query(query[None, :], k=count, num_threads=1)
                except RuntimeError:
                    continue
                ids[row, :count] = labels[0].astype(np.int64)
                scores[row, :count] = 1.0 - distances[0]
                break
        return ids, scores

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        labels = as_ids(ids)
        if len(labels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            return np.asarray(self._index.get_items(labels.astype(np.uint64), return_type="numpy"), dtype=np.float32)
        except RuntimeError:  # "Label not found": a document the index does not hold
            present = set(self._index.get_ids_list()) - self._deleted if self._initialised else set()
            raise missing_vector(self.name, next((i for i in labels.tolist() if i not in present), int(labels[0]))) from None

    def save(self, directory: Path) -> list[str]:
        if not self._initialised:
            self._create(INITIAL_CAPACITY)
        self._index.save_index(str(directory / self.file_name))
        deleted_name = f"{self.file_name}.deleted"
        save_array(directory / deleted_name, np.asarray(sorted(self._deleted), dtype=np.int64))
        return [self.file_name, deleted_name]

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> HnswlibIndex:
        """hnswlib cannot memory-map: the file is read into memory whatever ``mmap`` says.

        It trusts the file whole (a changed offset, count or link crashed it), so the whole file is
        checked first (``check_index_file``), with the deleted ids beside it."""
        path = directory / f"index.{cls.name}"
        deleted_path = directory / f"index.{cls.name}.deleted"
        index = cls.for_loading(directory, dim, params)
        settings = {"dim": dim, "M": int(index.params["M"]), "ef_construction": int(index.params["ef_construction"])}
        checked_once([path, deleted_path], {"backend": cls.name, **settings},
                     lambda: check_index_file(path, deleted_path, **settings))
        with library_errors(path, cls.name):
            index._index.load_index(str(path))
            index._deleted = set(load_array(deleted_path).tolist())
        index._initialised = True
        return index


# -- the file format (hnswlib 0.8, hnswalg.h saveIndex / loadIndex) --
#
#   size_t offsetLevel0_, max_elements_, cur_element_count, size_data_per_element_, label_offset_, offsetData_;
#   int maxlevel_; unsigned enterpoint_node_; size_t maxM_, maxM0_, M_; double mult_; size_t ef_construction_
#   cur_element_count elements of size_data_per_element_ bytes: {u32 count (u16) and flags (byte 2: deleted),
#       maxM0_ u32 links}, dim float32, size_t label
#   for each element: u32 linkListSize, then its levels above 0: each {u32 count, maxM_ u32 links}
#
# loadIndex checks only that the link lists add up to the file's size; search follows every
# number, so all of them are checked here.

HEADER = "<6QiI3QdQ"
HEADER_BYTES = 96
NO_ENTRY = 0xFFFFFFFF
DELETE_MARK = 0x01
MAX_LEVEL = 64


def check_index_file(path: Path, deleted_path: Path, *, dim: int, M: int, ef_construction: int) -> None:  # noqa: N803 - hnswlib's name
    """Refuse (one IndexFileError line) an index.hnswlib (and its .deleted ids) that is not what this backend writes."""
    with FileBytes(path) as file:
        (offset_level0, max_elements, count, element_bytes, label_offset, data_offset, max_level, entry,
         max_m, max_m0, file_m, mult, file_ef_construction) = file.read(HEADER, "the hnswlib header")
        links0_bytes = 4 + 4 * 2 * M
        expected = (0, links0_bytes, links0_bytes + 4 * dim, links0_bytes + 4 * dim + 8, M, 2 * M, M, max(ef_construction, M))
        found = (offset_level0, data_offset, label_offset, element_bytes, max_m, max_m0, file_m, file_ef_construction)
        if found != expected:
            names = ("offsetLevel0_", "offsetData_", "label_offset_", "size_data_per_element_", "maxM_", "maxM0_", "M_",
                     "ef_construction_")
            wrong = next(index for index in range(len(names)) if found[index] != expected[index])
            raise file.fail(f"{names[wrong]} is {found[wrong]:,}; {dim} dimensions and M={M} make {expected[wrong]:,}")
        if not math.isfinite(mult) or not math.isclose(mult, 1 / math.log(M), rel_tol=1e-9):
            raise file.fail(f"level multiplier {mult!r}; M={M} makes {1 / math.log(M)!r}")
        if not count <= max_elements <= max(INITIAL_CAPACITY, 2 * count) or max_elements >= 2**31:
            raise file.fail(f"{count:,} elements in room for {max_elements:,}")
        if count == 0:
            if (max_level, entry) != (-1, NO_ENTRY):
                raise file.fail(f"an empty graph with top level {max_level} and entry point {entry:,}")
        elif not 0 <= max_level <= MAX_LEVEL or entry >= count:
            raise file.fail(f"top level {max_level}, entry point {entry:,} of {count:,} elements")
        elements = file.take(np.uint8, count * element_bytes, f"{count:,} elements").reshape(count, element_bytes)
        levels, upper = _upper_link_lists(file, count, 4 + 4 * M)
        file.at_end("link lists")
        if count and (levels.max() != max_level or levels[entry] != max_level):
            raise file.fail(f"element levels up to {levels.max()}, top level {max_level}, entry point on level {levels[entry]}")
        labels = np.empty(count, dtype=np.uint64)
        deleted = np.zeros(count, dtype=bool)
        for part in chunks(count):
            block = elements[part]
            header = np.ascontiguousarray(block[:, :4]).view("<u4")[:, 0]
            sizes = (header & 0xFFFF).astype(np.int64)
            flags = header >> 16
            if sizes.max(initial=0) > 2 * M or (flags & ~np.uint32(DELETE_MARK)).any():
                raise file.fail(f"a level-0 link list of {sizes.max():,} links (at most {2 * M}) or unknown flags")
            deleted[part] = (flags & DELETE_MARK) != 0
            links = np.ascontiguousarray(block[:, 4:links0_bytes]).view("<u4")
            used = links[np.arange(2 * M)[None, :] < sizes[:, None]]
            if len(used) and used.max() >= count:
                raise file.fail(f"a level-0 link to element {used.max():,} of {count:,}")
            vectors = np.ascontiguousarray(block[:, data_offset:label_offset]).view("<f4")
            if not finite_floats(vectors):
                raise file.fail("vectors with NaN or infinite values")
            labels[part] = np.ascontiguousarray(block[:, label_offset:element_bytes]).view("<u8")[:, 0]
        for level, (owners, lists) in upper.items():
            sizes = (lists[:, 0] & 0xFFFF).astype(np.int64)
            if sizes.max(initial=0) > M or (lists[:, 0] >> 16).any():
                raise file.fail(f"a level-{level} link list of {sizes.max():,} links (at most {M})")
            used = lists[:, 1:][np.arange(M)[None, :] < sizes[:, None]].astype(np.int64)
            if len(used) and (used.max() >= count or levels[used].min() < level):
                raise file.fail(f"a level-{level} link to an element that is not on level {level}")
        if count and (labels.max() >= 2**63 or len(np.unique(labels)) != count):
            raise file.fail("labels that are not distinct document ids")
    check_npy(deleted_path, "<i8", lambda shape: None if len(shape) == 1 else f"has shape {shape}, expected one dimension")
    removed = np.sort(load_array(deleted_path))
    if not np.array_equal(removed, np.sort(labels[deleted].astype(np.int64))):
        raise damaged(deleted_path, "its ids are not the ones the index marks deleted")


def _upper_link_lists(file: FileBytes, count: int, list_bytes: int) -> tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Each element's level (from its linkListSize) and, per level above 0, the elements on it and their
    (u32 count, M links) lists; read front to back, one size at a time, as loadIndex does."""
    levels = np.zeros(count, dtype=np.int64)
    starts = np.zeros(count, dtype=np.int64)
    unpack = struct.Struct("<I").unpack_from
    data = file.bytes
    position = file.position
    size = file.size
    for element in range(count):
        if position + 4 > size:
            raise file.fail(f"the link lists end at element {element:,} of {count:,}")
        (length,) = unpack(data, position)
        position += 4
        if length:
            if length % list_bytes or length // list_bytes > MAX_LEVEL:
                raise file.fail(f"element {element:,} has {length:,} bytes of upper links, not a whole number of levels")
            levels[element] = length // list_bytes
            starts[element] = position
            position += length
            if position > size:
                raise file.fail(f"the link lists of element {element:,} run past the end of the file")
    file.position = position
    upper: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for level in range(1, int(levels.max(initial=0)) + 1):
        owners = np.flatnonzero(levels >= level)
        offsets = starts[owners] + (level - 1) * list_bytes
        # Upper lists start at any multiple of 4 bytes after the header: as words from the aligned view.
        lists = np.stack([file.array(int(offset), "<u4", list_bytes // 4, "a link list") for offset in offsets]) \
            if len(offsets) else np.zeros((0, list_bytes // 4), dtype=np.uint32)
        upper[level] = (owners, lists)
    return levels, upper

