"""ScaNN (the ``scann`` package, extra ``scann``): k-means leaves with SOAR spilling, anisotropic
hashing (AH) scored 4 bits a code, then the best candidates re-scored on int8 copies (issue 12).

For ``semsearch bench`` only, not for collections. ScaNN's saved assets (``scann_assets.pbtxt``)
name the files it reads by path, its config is a protobuf its C++ trusts, and its arrays hold
offsets into one another; a collection may come from a stranger, and checking all of that
before ScaNN reads it is not done. So ``load`` refuses, and the benchmark, which reads back only
the files it has just written in its own workspace, uses ``open_own``.

The package's ``scann/__init__.py`` imports its TensorFlow ops (which fail against another
TensorFlow than the one it was built for) and its Python wrapper pickles ids; neither is used:
the compiled ``scann_pybind`` module and the pure-Python config builder are loaded by path.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from semsearch.backends.base import (
    MISSING_ID, ParamSpec, VectorIndex, as_ids, as_queries, load_array, padded_results, save_array,
)
from semsearch.errors import CollectionError, MissingExtraError

DEFAULTS: dict[str, Any] = {
    "leaves": 2000, "leaves_to_search": 40, "soar_lambda": 1.5, "dims_per_block": 2, "anisotropic_threshold": 0.2,
    "reorder": 50, "quantize_centroids": True, "training_sample_size": 250_000,
}
PARAM_SCHEMA: dict[str, ParamSpec] = {
    "leaves": ParamSpec(int, 1, 1_000_000),
    "leaves_to_search": ParamSpec(int, 1, 1_000_000),
    # 0: no spilling; else SOAR's orthogonality amplification (ScaNN's default 1.5).
    "soar_lambda": ParamSpec(float, 0, 100),
    "dims_per_block": ParamSpec(int, 1, 64),
    "anisotropic_threshold": ParamSpec(float, 0, 1),
    # Candidates re-scored on int8 copies of the vectors (0: none).
    "reorder": ParamSpec(int, 0, 100_000),
    "quantize_centroids": ParamSpec(bool),
    "training_sample_size": ParamSpec(int, 1_000, 100_000_000),
}
SAVED_DIRECTORY = "index.scann"
IDS_FILE = "index.scann.ids.npy"


def _load_by_path(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise MissingExtraError("scann", "scann", "The scann backend")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _scann() -> tuple[ModuleType, ModuleType]:
    """(scann_pybind, scann_builder), without running the package's __init__ (see the module's docstring)."""
    spec = importlib.util.find_spec("scann")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("scann", "scann", "The scann backend")
    root = Path(next(iter(spec.submodule_search_locations)))
    compiled = sorted((root / "scann_ops" / "cc" / "python").glob("scann_pybind*.so"))
    if not compiled:
        raise MissingExtraError("scann", "scann", "The scann backend")
    return _load_by_path("scann_pybind", compiled[0]), _load_by_path("semsearch_scann_builder", root / "scann_ops" / "py" / "scann_builder.py")


class _Shape:
    """What ScaNN's config builder reads of a data set: its shape."""

    def __init__(self, rows: int, dim: int) -> None:
        self.shape = (rows, dim)


class ScannIndex(VectorIndex):
    name = "scann"
    keeps_vectors = False
    supports_updates = False
    search_params = ("leaves_to_search",)
    param_schema = PARAM_SCHEMA

    def __init__(self, dim: int, **params: Any) -> None:
        super().__init__(dim, **{**DEFAULTS, **params})
        self._pybind, self._builder = _scann()
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._ids = np.zeros(0, dtype=np.int64)
        self._searcher: Any = None

    def __len__(self) -> int:
        return len(self._ids) + sum(len(ids) for ids, _ in self._pending)

    def config(self, rows: int) -> str:
        """ScaNN's text config for ``rows`` vectors, made by the package's own builder."""
        p = self.params
        builder = self._builder.ScannBuilder(_Shape(rows, self.dim), 10, "dot_product")
        leaves = min(int(p["leaves"]), max(1, rows // 50))
        builder = builder.tree(leaves, int(p["leaves_to_search"]), training_sample_size=min(rows, int(p["training_sample_size"])),
                               quantize_centroids=bool(p["quantize_centroids"]), spherical=True,
                               soar_lambda=float(p["soar_lambda"]) or None)
        builder = builder.score_ah(int(p["dims_per_block"]), anisotropic_quantization_threshold=float(p["anisotropic_threshold"]),
                                   training_sample_size=min(rows, int(p["training_sample_size"])))
        if int(p["reorder"]):
            builder = builder.reorder(int(p["reorder"]), quantize=self._builder.ReorderType.INT8)
        return builder.create_config()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._searcher is not None:
            raise ValueError("a built ScaNN index takes no more vectors here; the benchmark builds it once")
        self._pending.append((as_ids(ids), as_queries(vectors, self.dim)))

    def remove(self, ids: np.ndarray) -> None:
        raise ValueError("the scann backend (for semsearch bench only) does not remove vectors")

    def _build(self) -> None:
        if self._searcher is not None or not self._pending:
            return
        self._ids = np.concatenate([ids for ids, _ in self._pending])
        data = np.empty((len(self._ids), self.dim), dtype=np.float32)
        row = 0
        while self._pending:  # free each block as it is copied, so the input is held once
            _, block = self._pending.pop(0)
            data[row : row + len(block)] = block
            row += len(block)
        threads = self.threads or os.cpu_count() or 1
        self._searcher = self._pybind.ScannNumpy(data, self.config(len(data)), threads)
        del data

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.check_search_params(params)
        queries = as_queries(queries, self.dim)
        self._build()
        ids, scores = padded_results(len(queries), k)
        if self._searcher is None:
            return ids, scores
        leaves = int(self.search_param(params, "leaves_to_search"))
        pre_reorder = max(k, int(self.params["reorder"])) if int(self.params["reorder"]) else k
        if len(queries) == 1:
            found, distances = self._searcher.search(queries[0], k, pre_reorder, leaves)
            found, distances = np.atleast_2d(found), np.atleast_2d(distances)
        else:
            found, distances = self._searcher.search_batched(queries, k, pre_reorder, leaves, False, 0)
        found = np.asarray(found, dtype=np.int64)
        count = min(k, found.shape[1])
        valid = (found[:, :count] >= 0) & (found[:, :count] < len(self._ids))
        ids[:, :count] = np.where(valid, self._ids[np.clip(found[:, :count], 0, max(len(self._ids) - 1, 0))], MISSING_ID)
        scores[:, :count] = np.where(valid, np.asarray(distances, dtype=np.float32)[:, :count], -np.inf)
        return ids, scores

    @classmethod
    def saved_files(cls) -> tuple[str, ...]:
        return (IDS_FILE,)

    def save(self, directory: Path) -> list[str]:
        self._build()
        if self._searcher is None:
            raise ValueError("an empty ScaNN index cannot be saved")
        (directory / SAVED_DIRECTORY).mkdir(exist_ok=True)
        self._searcher.serialize(str(directory / SAVED_DIRECTORY), True)
        save_array(directory / IDS_FILE, self._ids)
        return [SAVED_DIRECTORY, IDS_FILE]

    @classmethod
    def load(cls, directory: Path, dim: int, params: dict[str, Any], mmap: bool = True) -> ScannIndex:
        raise CollectionError(f"{directory}: a scann index is for semsearch bench only; a collection cannot use one "
                              "(ScaNN follows the file paths its assets name, and its files are not checked)")

    @classmethod
    def open_own(cls, directory: Path, dim: int, params: dict[str, Any]) -> ScannIndex:
        """Reopen an index this process's benchmark saved in its own workspace (trusted: never a stranger's files)."""
        index = cls(dim, **params)
        assets = (directory / SAVED_DIRECTORY / "scann_assets.pbtxt").read_text(encoding="utf-8")
        previous = os.getcwd()
        os.chdir(directory / SAVED_DIRECTORY)  # the assets name their files relative to the directory they are in
        try:
            index._searcher = index._pybind.ScannNumpy(str(directory / SAVED_DIRECTORY), assets)
        finally:
            os.chdir(previous)
        index._ids = load_array(directory / IDS_FILE)
        return index
