"""Backend parameters are checked against each backend's schema, and index files against their format, before a library sees them.

A few changes that crashed a library (tests/test_crafted_collections.py tries some thousands):
each must be one error line, raised in Python. Every test that hands a library a bad file runs
the load in a fresh process, so that a check that let it through shows as a crash of that
process, not of the test run.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch.backends import BACKENDS, backend_class, create_index
from semsearch.backends.base import BackendParamError
from semsearch.backends.checks import IndexFileError, checked_once
from semsearch.backends.reduced import REDUCERS
from semsearch.errors import CollectionError, SemsearchError
from semsearch.storage import layout

DIM = 16


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(3)
    data = generator.normal(size=(300, DIM)).astype(np.float32)
    return np.arange(300, dtype=np.int64) * 2 + 7, data / np.linalg.norm(data, axis=1, keepdims=True)


def saved(tmp_path: Path, name: str, params: dict[str, Any], vectors: tuple[np.ndarray, np.ndarray]) -> tuple[Path, dict[str, Any]]:
    index = create_index(name, DIM, dict(params))
    index.threads = 1
    index.add(*vectors)
    index.save(tmp_path)
    return tmp_path, json.loads(json.dumps(index.params))


def load_in_a_fresh_process(directory: Path, name: str, params: dict[str, Any]) -> str:
    """Load and search the index in its own interpreter; its one line of error (or "ok"), or the signal that killed it."""
    code = (
        "import sys, json, numpy as np\n"
        "from pathlib import Path\n"
        "from semsearch.backends import backend_class\n"
        "from semsearch.errors import SemsearchError\n"
        f"cls = backend_class({name!r})\n"
        "try:\n"
        f"    index = cls.load(Path({str(directory)!r}), {DIM}, json.loads({json.dumps(params)!r}))\n"
        f"    index.search(np.ones((1, {DIM}), dtype=np.float32) / 4, 5)\n"
        "    print('ok')\n"
        "except SemsearchError as error:\n"
        "    print(type(error).__name__, str(error))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={"OMP_NUM_THREADS": "1", "SEMSEARCH_CACHE_DIR": str(directory / ".cache"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, f"the load died ({result.returncode}): {result.stderr[-2000:]}"
    return result.stdout.strip()


def poke(path: Path, offset: int, layout_: str, value: Any) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(layout_, data, offset, value)
    path.write_bytes(bytes(data))


def test_the_manifest_knows_every_backend_and_reducer() -> None:
    assert set(layout.KNOWN_BACKENDS) == set(BACKENDS)
    assert set(layout.KNOWN_REDUCERS) == set(REDUCERS)


@pytest.mark.parametrize(("name", "params", "message"), [
    ("hnswlib", {"M": 0}, "parameter M must be from 2 to 1,024, got 0"),
    ("hnswlib", {"M": 1}, "parameter M must be from 2"),
    ("hnswlib", {"M": "16"}, "parameter M must be an integer, got '16'"),
    ("hnswlib", {"M": True}, "parameter M must be an integer, got True"),
    ("hnswlib", {"ef_construction": -5}, "parameter ef_construction must be from 1"),
    ("usearch", {"connectivity": 1}, "parameter connectivity must be from 2 to 512, got 1"),
    ("usearch", {"dtype": "b1"}, "parameter dtype must be one of f64, f32, f16, bf16, i8, got 'b1'"),
    ("usearch", {"expansion_search": 0}, "parameter expansion_search must be from 1"),
    ("annoy", {"n_trees": 0}, "parameter n_trees must be from 1 to 10,000, got 0"),
    ("annoy", {"search_k": -2}, "parameter search_k must be from 1 to 2,147,483,647 (or -1), got -2"),
    ("faiss", {"nprobe": 0}, "parameter nprobe must be from 1"),
    ("faiss", {"train_size": 2.5}, "parameter train_size must be an integer"),
    ("exact", {"bogus": 1}, "the exact backend has no parameter 'bogus'; it takes: none"),
    ("usearch", {"M": 16}, "the usearch backend has no parameter 'M'; it takes: connectivity, dtype, expansion_add, expansion_search"),
])
def test_a_build_parameter_out_of_its_schema_is_one_line_before_the_library(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendParamError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        create_index(name, DIM, params)
    assert isinstance(raised.value, SemsearchError) and isinstance(raised.value, ValueError)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("dim", [0, -3, 65_537, 2.5])
def test_an_index_dimension_out_of_range_is_refused(dim: Any) -> None:
    with pytest.raises(BackendParamError, match="dimension"):
        create_index("exact", dim)


def test_search_parameter_values_are_checked_too(vectors: tuple[np.ndarray, np.ndarray]) -> None:
    index = create_index("hnswlib", DIM, {"M": 8})
    index.add(*vectors)
    with pytest.raises(BackendParamError, match="parameter ef must be from 1 to 100,000, got 0"):
        index.search(vectors[1][:1], 3, ef=0)
    assert index.search(vectors[1][:1], 3, ef=50)[0][0, 0] == vectors[0][0]


def test_the_cli_build_with_m_0_is_one_line(tmp_path: Path) -> None:
    from semsearch.cli import cli

    result = CliRunner().invoke(cli, ["build", "abcnews-sample", "-o", str(tmp_path / "c"), "--limit", "50", "--quiet",
                                      "--backend", "hnswlib", "--param", "M=0"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: the hnswlib backend's parameter M must be from 2 to 1,024, got 0"


def test_faiss_refuses_a_kind_of_index_it_cannot_check() -> None:
    with pytest.raises(SemsearchError, match="is of a kind semsearch cannot check"):
        create_index("faiss", DIM, {"index": "OPQ4,IVF4,Flat"})
    with pytest.raises(SemsearchError, match="cannot check"):
        create_index("faiss", DIM, {"index": "IVF4_HNSW8,Flat"})


def usearch_head(path: Path) -> int:
    rows, columns = struct.unpack_from("<2I", path.read_bytes())
    return 8 + rows * columns


@pytest.mark.parametrize(("field", "where", "layout_", "value", "message"), [
    ("metric", 13, "<B", ord("b"), "metric 'b' (98); this backend writes cos (99)"),
    ("metric", 13, "<B", 4, "metric 4; this backend writes cos"),
    ("scalar", 14, "<B", 255, "scalar kind 255; the manifest's dtype f16 is 12"),
    ("dimensions", 33, "<Q", 17, "17 dimensions, the manifest says 16"),
    ("entry slot", 64 + 32, "<Q", 10**6, "entry node 1,000,000 of 300 nodes"),
])
def test_usearch_header_changes_are_refused(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray], field: str, where: int,
                                            layout_: str, value: int, message: str) -> None:
    directory, params = saved(tmp_path, "usearch", {}, vectors)
    path = directory / "index.usearch"
    poke(path, usearch_head(path) + where, layout_, value)
    outcome = load_in_a_fresh_process(directory, "usearch", params)
    assert outcome.startswith(f"IndexFileError {path}: not a sound index file: ") and message in outcome, outcome


def test_a_usearch_neighbour_out_of_range_is_refused(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray]) -> None:
    directory, params = saved(tmp_path, "usearch", {}, vectors)
    path = directory / "index.usearch"
    first_node = usearch_head(path) + 64 + 40 + 2 * 300
    poke(path, first_node + 14, "<I", 300)
    assert "a level-0 neighbour 300; there are 300 nodes" in load_in_a_fresh_process(directory, "usearch", params)


@pytest.mark.parametrize(("offset", "layout_", "value", "message"), [
    (0, "<Q", 7, "offsetLevel0_ is 7"),
    (16, "<Q", 301, "the link lists end at element 283 of 301"),
    (52, "<I", 300, "entry point 300 of 300 elements"),
    (56, "<Q", 2**64 - 1, "maxM_ is 18,446,744,073,709,551,615; 16 dimensions and M=8 make 8"),
    (80, "<d", float("nan"), "level multiplier nan"),
    (96, "<H", 31, "a level-0 link list of 31 links (at most 16)"),
    (100, "<I", 300, "a level-0 link to element 300 of 300"),
])
def test_hnswlib_header_and_link_changes_are_refused(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray], offset: int,
                                                     layout_: str, value: Any, message: str) -> None:
    directory, params = saved(tmp_path, "hnswlib", {"M": 8}, vectors)
    poke(directory / "index.hnswlib", offset, layout_, value)
    outcome = load_in_a_fresh_process(directory, "hnswlib", params)
    assert outcome.startswith("IndexFileError") and message in outcome, outcome


def test_an_annoy_child_that_loops_or_points_outside_is_refused(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray]) -> None:
    directory, params = saved(tmp_path, "annoy", {"n_trees": 3}, vectors)
    path = directory / "index.annoy"
    node = 12 + 4 * DIM
    count = path.stat().st_size // node
    for child in (count - 1, count + 5, -2):  # itself (a loop), past the end, negative
        poke(path, (count - 1) * node + 8, "<i", child)
        outcome = load_in_a_fresh_process(directory, "annoy", params)
        assert outcome.endswith("a split whose children are not nodes made before it"), outcome


def test_a_faiss_quantizer_with_more_centroids_than_lists_is_refused(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray]) -> None:
    directory, params = saved(tmp_path, "faiss", {"index": "IVF4,Flat", "nprobe": 4}, vectors)
    path = directory / "index.faiss"
    poke(path, 37, "<Q", 3)  # nlist 3, while the quantizer holds 4 centroids and there are 4 lists
    outcome = load_in_a_fresh_process(directory, "faiss", params)
    assert outcome.endswith("the coarse quantizer holds 4 vectors, expected 3"), outcome


def test_a_truncated_faiss_hnsw_file_is_refused(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray]) -> None:
    directory, params = saved(tmp_path, "faiss", {"index": "HNSW8"}, vectors)
    path = directory / "index.faiss"
    path.write_bytes(path.read_bytes()[:64])  # faiss 1.15.1 itself segfaulted on this one
    assert "beyond the end of the file" in load_in_a_fresh_process(directory, "faiss", params)


def test_an_npy_whose_header_claims_more_than_the_file_holds_is_refused(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray]) -> None:
    directory, params = saved(tmp_path, "exact", {}, vectors)
    path = directory / "index.exact"
    data = path.read_bytes()
    assert b"'shape': (300, 16), " in data
    path.write_bytes(data.replace(b"'shape': (300, 16), ", b"'shape': (10**9,16),"))  # not a literal
    outcome = load_in_a_fresh_process(directory, "exact", params)
    assert outcome.startswith("IndexFileError") and "not a .npy array" in outcome, outcome
    path.write_bytes(data.replace(b"'shape': (300, 16), ", b"'shape': (3000, 16),"))
    outcome = load_in_a_fresh_process(directory, "exact", params)
    assert "a (3000, 16) array takes 192,128 bytes, there are 19,328" in outcome, outcome


def test_a_checked_file_is_checked_once_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "file"
    path.write_bytes(b"one")
    calls = []
    checked_once([path], {"what": 1}, lambda: calls.append(1))
    checked_once([path], {"what": 1}, lambda: calls.append(2))
    assert calls == [1]
    checked_once([path], {"what": 2}, lambda: calls.append(3))  # checked against something else
    path.write_bytes(b"two")
    checked_once([path], {"what": 1}, lambda: calls.append(4))
    assert calls == [1, 3, 4]

    def refuse() -> None:
        raise IndexFileError("bad")

    path.write_bytes(b"three")
    for _ in range(2):  # a refusal is not remembered
        with pytest.raises(IndexFileError):
            checked_once([path], {"what": 1}, refuse)


def test_a_library_error_on_open_is_one_collection_error_line(tmp_path: Path, vectors: tuple[np.ndarray, np.ndarray]) -> None:
    directory, params = saved(tmp_path, "usearch", {}, vectors)
    with pytest.raises(CollectionError, match="no parameter 'zzz'"):
        backend_class("usearch").load(directory, DIM, {**params, "zzz": 1})
    with pytest.raises(CollectionError, match="32 bytes per vector; 16 dimensions in f32 take 64"):
        backend_class("usearch").load(directory, DIM, {**params, "dtype": "f32"})


@pytest.mark.parametrize("dtype", ["<f2", "<f4", ">f4", "<f8", ">f2"])
def test_finite_floats_finds_every_nan_and_infinity_on_the_bits(dtype: str) -> None:
    from semsearch.backends.checks import finite_floats

    values = np.random.default_rng(1).standard_normal((300, 9)).astype(dtype)
    assert finite_floats(values) and finite_floats(values[:, 4:])
    extremes = np.array([np.finfo(dtype).max, -np.finfo(dtype).max, np.finfo(dtype).tiny / 4, -0.0], dtype=dtype)
    assert finite_floats(extremes), "the largest, a subnormal and minus zero are finite"
    for bad in (np.nan, np.inf, -np.inf):
        damaged = values.copy()
        damaged[211, 7] = bad
        assert not finite_floats(damaged) and not finite_floats(damaged[:, 4:]), bad


def test_all_distinct_with_keys_in_order_and_out_of_it() -> None:
    from semsearch.backends.checks import all_distinct

    assert all_distinct(np.arange(1000, dtype=np.uint64)) and all_distinct(np.array([5, 1, 9, 3]))
    assert not all_distinct(np.array([5, 1, 9, 5])) and not all_distinct(np.array([1, 2, 2, 3]))
    assert all_distinct(np.zeros(0, dtype=np.int64)) and all_distinct(np.array([7]))
