"""Annoy: a forest of random-projection trees in one memory-mapped file, as the original tutorial used.

Annoy builds its trees once, over every vector it was given, and cannot take more after
that: adding to a built index is an error that says so. Annoy numbers items 0..n-1 and
allocates up to the largest number, so documents are stored by position and a sidecar
array maps positions to document ids; a removed document's position is marked -1 there
and skipped at search time, since Annoy cannot take an item out of its trees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import (
    MISSING_ID, ParamSpec, VectorIndex, as_ids, as_queries, load_array, padded_results, save_array,
)
from semsearch.backends.checks import FileBytes, check_npy, checked_once, chunks, damaged, finite_floats, library_errors
from semsearch.errors import import_optional

# The tutorial's settings: 100 trees, and search_k -1, which Annoy reads as n_trees * k.
DEFAULTS: dict[str, Any] = {"n_trees": 100, "search_k": -1}
PARAM_SCHEMA: dict[str, ParamSpec] = {
    "n_trees": ParamSpec(int, 1, 10_000),
    "search_k": ParamSpec(int, 1, 2**31 - 1, also=(-1,)),  # a C int; -1: n_trees * k
}


class AnnoyIndex(VectorIndex):
    name = "annoy"
    keeps_vectors = False
    supports_updates = False
    search_params = ("search_k",)
    param_schema = PARAM_SCHEMA

    @classmethod
    def saved_files(cls) -> tuple[str, ...]:
        return (f"index.{cls.name}", f"index.{cls.name}.ids")

    def __init__(self, dim: int, **params: Any) -> None:
        super().__init__(dim, **{**DEFAULTS, **params})
        annoy = import_optional("annoy", "annoy", "annoy", "The annoy backend")
        self._index = annoy.AnnoyIndex(dim, "angular")
        # Document id at each Annoy position; MISSING_ID where the document was removed.
        self._ids = np.zeros(0, dtype=np.int64)
        self._built = False

    def __len__(self) -> int:
        return int(np.count_nonzero(self._ids != MISSING_ID))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._built:
            raise ValueError("Annoy cannot add vectors to an index once its trees are built; rebuild the collection to add documents")
        ids, vectors = as_ids(ids), as_queries(vectors, self.dim)
        start = len(self._ids)
        for offset, vector in enumerate(vectors):
            self._index.add_item(start + offset, vector)
        self._ids = np.concatenate([self._ids, ids])

    def remove(self, ids: np.ndarray) -> None:
        self._ids = np.where(np.isin(self._ids, as_ids(ids)), MISSING_ID, self._ids)

    def _build(self) -> None:
        if self._built:
            return
        jobs = self.threads or -1
        self._index.build(int(self.params["n_trees"]), n_jobs=jobs)
        self._built = True

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        queries = as_queries(queries, self.dim)
        self._build()
        ids, scores = padded_results(len(queries), k)
        search_k = int(self.search_param(params, "search_k"))
        positions_to_ids = self._ids
        removed = len(positions_to_ids) - len(self)
        # Ask for enough extra neighbours to make up for removed documents among them.
        fetch_count = min(k + removed, len(positions_to_ids))
        for row, query in enumerate(queries):
            positions, distances = self._index.get_nns_by_vector(query, fetch_count, search_k=search_k, include_distances=True)
            found = positions_to_ids[np.asarray(positions, dtype=np.int64)]
            live = found != MISSING_ID
            found = found[live][:k]
            # Annoy's angular distance is sqrt(2 - 2 cos) between normalised vectors.
            cosine = 1.0 - np.square(np.asarray(distances, dtype=np.float32)[live][:k]) / 2.0
            ids[row, : len(found)] = found
            scores[row, : len(found)] = cosine
        return ids, scores

    def save(self, directory: Path) -> list[str]:
        self._build()
        ids_name = f"{self.file_name}.ids"
        self._index.save(str(directory / self.file_name))
        save_array(directory / ids_name, self._ids)
        return [self.file_name, ids_name]

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> AnnoyIndex:
        """Annoy always memory-maps its file; ``mmap=False`` reads the pages in at once instead of on demand.

        Annoy follows every child and item number in the file without a bound (a changed one read
        outside the map, a loop of children never ended), so the whole forest is checked first."""
        path = directory / f"index.{cls.name}"
        ids_path = directory / f"index.{cls.name}.ids"
        index = cls.for_loading(directory, dim, params)
        checked_once([path, ids_path], {"backend": cls.name, "dim": dim}, lambda: check_index_file(path, ids_path, dim=dim))
        with library_errors(path, cls.name):
            index._index.load(str(path), prefault=not mmap)
            index._ids = load_array(ids_path)
        if index._index.get_n_items() != len(index._ids):
            raise damaged(path, f"Annoy found {index._index.get_n_items():,} items, the ids beside it are {len(index._ids):,}")
        index._built = True
        return index


# -- the file format (annoylib.h, angular distance, int32 ids, float32 values) --
#
# An array of nodes of 12 + 4 * dim bytes: {i32 n_descendants, i32 children[2], f32 v[dim]}. Items
# 0..n-1 first (n_descendants 1, v the vector), then each tree's nodes: a split (n_descendants
# > K = dim + 2; two children, v the normal of the plane) or a list of up to K item numbers
# (n_descendants of them, from the children field on); the roots, copied, last. Annoy's
# load() takes the trailing nodes with equal n_descendants as roots and that count as n;
# a search follows children and item numbers as they are. Every child is made before its
# parent, so in a sound file each child's number is below its parent's: no loops.


def check_index_file(path: Path, ids_path: Path, *, dim: int) -> None:
    """Refuse (one IndexFileError line) an index.annoy (and its ids) that is not what this backend writes."""
    width = 3 + dim  # 4-byte words per node
    most = dim + 2  # K: item numbers that fit in a node
    with FileBytes(path) as file:
        if file.size == 0 or file.size % (4 * width):
            raise file.fail(f"{file.size:,} bytes, not a whole number of {4 * width:,}-byte nodes for {dim} dimensions")
        count = file.size // (4 * width)
        if count >= 2**31:
            raise file.fail(f"{count:,} nodes; Annoy numbers them with 32-bit integers")
        nodes = file.array(0, "<i4", count * width, "the nodes").reshape(count, width)
        descendants = nodes[:, 0]
        roots = _roots(nodes)
        items = int(descendants[roots[0]])
        if items == 0 and not descendants.any():  # built over no vectors (every document removed, then rebuilt)
            count = items = 0
        elif not 1 <= items <= count:
            raise file.fail(f"roots with {items:,} descendants among {count:,} nodes")
        if (descendants[:items] != 1).any():
            raise file.fail("an item that is not a leaf")
        values = nodes.view("<f4")
        for part in chunks(count - items):
            start, stop = part.start + items, part.stop + items
            block = nodes[start:stop]
            kinds = block[:, 0]
            if kinds.min() < 1 or kinds.max() > items:
                raise file.fail(f"a tree node with {int(kinds.min() if kinds.min() < 1 else kinds.max()):,} descendants of {items:,} items")
            splits = kinds > most
            children = block[splits][:, 1:3].astype(np.int64)
            numbers = np.arange(start, stop, dtype=np.int64)[splits]
            if len(children) and ((children < 0).any() or (children >= numbers[:, None]).any()):
                raise file.fail("a split whose children are not nodes made before it")
            lists = block[~splits][:, 1 : 1 + most]
            listed = lists[np.arange(most)[None, :] < kinds[~splits][:, None]]
            if len(listed) and (listed.min() < 0 or listed.max() >= items):
                raise file.fail(f"a leaf that lists an item outside 0..{items - 1:,}")
            if not finite_floats(values[start:stop][splits][:, 3:]):
                raise file.fail("a split plane with NaN or infinite values")
        for part in chunks(items):
            if not finite_floats(values[part, 3:]):
                raise file.fail("an item vector with NaN or infinite values")
    shape = check_npy(ids_path, "<i8", lambda shape: None if len(shape) == 1 else f"has shape {shape}, expected one dimension")
    if shape[0] != items:
        raise damaged(ids_path, f"{shape[0]:,} ids for the index's {items:,} items")
    ids = load_array(ids_path)
    if len(ids) and ids.min() < MISSING_ID:
        raise damaged(ids_path, f"an id {int(ids.min()):,}; ids are -1 (removed) or document ids")


def _roots(nodes: np.ndarray) -> list[int]:
    """The nodes Annoy's load() takes as roots: the trailing run with equal n_descendants, less a repeated last one."""
    descendants = nodes[:, 0]
    last = descendants[-1]
    different = np.flatnonzero(descendants != last)
    first = int(different[-1]) + 1 if len(different) else 0
    roots = list(range(len(descendants) - 1, first - 1, -1))
    if len(roots) > 1 and nodes[roots[0], 1] == nodes[roots[-1], 1]:
        roots.pop()
    return roots
