"""One harness for every ANN backend: build, save, load (memory-mapped and not), search, add, remove.

Every backend runs the same tests on the same clustered vectors; where a library cannot do
something (Annoy cannot add after its trees are built, faiss's HNSW cannot remove), the test
asserts that the error says so instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semsearch.backends import BACKENDS, MISSING_ID, VectorIndex, backend_class, create_index
from semsearch.errors import MissingExtraError, SemsearchError
from semsearch.bench.evaluate import recall_at_k

DIM = 32
COUNT = 2000


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in 40 clusters, with sparse ids (not 0..n-1) so id mapping is exercised."""
    generator = np.random.default_rng(7)
    centres = generator.normal(size=(40, DIM))
    vectors = centres[generator.integers(0, 40, COUNT)] + 0.35 * generator.normal(size=(COUNT, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(COUNT, dtype=np.int64) * 3 + 1_000_000
    return ids, vectors


# (backend, build params, can add after load, can remove, a (small, large) pair of a search parameter)
CASES: dict[str, tuple[str, dict[str, Any], bool, bool, tuple[str, int, int] | None]] = {
    "exact": ("exact", {}, True, True, None),
    "usearch-f16": ("usearch", {}, True, True, ("expansion_search", 1, 128)),
    "usearch-i8": ("usearch", {"dtype": "i8", "connectivity": 8, "expansion_add": 64}, True, True, ("expansion_search", 1, 128)),
    "usearch-bf16": ("usearch", {"dtype": "bf16"}, True, True, ("expansion_search", 1, 128)),
    "hnswlib": ("hnswlib", {"M": 8, "ef_construction": 64}, True, True, ("ef", 1, 128)),
    "faiss-ivf-flat": ("faiss", {"index": "IVF16,Flat", "nprobe": 16}, True, True, ("nprobe", 1, 16)),
    "faiss-ivf-sq8": ("faiss", {"index": "IVF16,SQ8", "nprobe": 16}, True, True, ("nprobe", 1, 16)),
    "faiss-hnsw": ("faiss", {"index": "HNSW16", "efSearch": 64}, True, False, ("efSearch", 1, 128)),
    "annoy": ("annoy", {"n_trees": 20}, False, True, ("search_k", 10, 20_000)),
}


@pytest.fixture(params=list(CASES), scope="module")
def case(request: pytest.FixtureRequest) -> str:
    return request.param


def build(case: str, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
    name, params = CASES[case][0], CASES[case][1]
    index = create_index(name, DIM, dict(params))
    for start in range(0, len(ids), 500):  # in batches, as a collection build adds them
        index.add(ids[start : start + 500], vectors[start : start + 500])
    return index


def exact_neighbours(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]
    return ids[order]


@pytest.fixture(scope="module")
def built(case: str, data: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> tuple[VectorIndex, Path]:
    """Each backend built once, and saved into a directory of its own."""
    ids, vectors = data
    index = build(case, ids, vectors)
    directory = tmp_path_factory.mktemp(case)
    written = index.save(directory)
    assert sorted(written) == sorted(path.name for path in directory.iterdir())
    return index, directory


def test_registry_names_every_backend() -> None:
    assert set(BACKENDS) == {"annoy", "exact", "faiss", "hnswlib", "usearch"}
    for name in BACKENDS:
        assert backend_class(name).name == name


def test_each_vector_finds_itself_first(built: tuple[VectorIndex, Path], data: tuple[np.ndarray, np.ndarray]) -> None:
    index, _ = built
    ids, vectors = data
    found, scores = index.search(vectors[:200], 5)
    assert found.shape == scores.shape == (200, 5)
    itself = found[:, 0] == ids[:200]
    assert np.mean(itself) >= 0.97
    assert np.all(np.abs(scores[itself, 0] - 1.0) < 0.03)  # cosine of a vector with itself
    assert np.all(np.diff(scores, axis=1) <= 1e-4)  # best first


def test_recall_against_exact_search(built: tuple[VectorIndex, Path], data: tuple[np.ndarray, np.ndarray]) -> None:
    index, _ = built
    ids, vectors = data
    queries = vectors[::20] + np.float32(0.05)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    found, _ = index.search(queries, 10)
    assert recall_at_k(found, exact_neighbours(ids, vectors, queries, 10), 10) >= 0.85


def test_len_counts_vectors(built: tuple[VectorIndex, Path]) -> None:
    index, _ = built
    assert len(index) == COUNT


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "in-memory"])
def test_save_and_load_give_the_same_results(built: tuple[VectorIndex, Path], data: tuple[np.ndarray, np.ndarray], mmap: bool) -> None:
    index, directory = built
    _, vectors = data
    # The params go through the manifest as JSON; they must come back as they went in.
    params = json.loads(json.dumps(index.params))
    loaded = type(index).load(directory, DIM, params, mmap=mmap)
    assert loaded.params == index.params
    assert len(loaded) == COUNT
    before, before_scores = index.search(vectors[:50], 10)
    after, after_scores = loaded.search(vectors[:50], 10)
    np.testing.assert_array_equal(before, after)
    np.testing.assert_allclose(before_scores, after_scores, atol=1e-5)


def test_search_parameters_change_per_query(built: tuple[VectorIndex, Path], data: tuple[np.ndarray, np.ndarray], case: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from semsearch.backends import usearch

    monkeypatch.setattr(usearch, "EXACT_SEARCH_LIMIT", 0)  # the graph itself, not the brute force small indexes get
    index, _ = built
    ids, vectors = data
    setting = CASES[case][4]
    with pytest.raises(ValueError, match="no search parameter bogus"):
        index.search(vectors[:1], 10, bogus=1)
    if setting is None:
        assert index.search_params == ()
        return
    name, small, large = setting
    assert name in index.search_params
    queries = vectors[1::10] + np.float32(0.1)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = exact_neighbours(ids, vectors, queries, 10)
    narrow = recall_at_k(index.search(queries, 10, **{name: small})[0], truth, 10)
    wide = recall_at_k(index.search(queries, 10, **{name: large})[0], truth, 10)
    assert wide > narrow
    assert wide >= 0.9


def test_more_neighbours_asked_than_held_are_padded(case: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vectors = data
    name, params = CASES[case][0], CASES[case][1]
    if name == "faiss" and "IVF" in params["index"]:
        params = {**params, "index": params["index"].replace("IVF16", "IVF2"), "nprobe": 2}
    index = create_index(name, DIM, dict(params))
    index.add(ids[:40], vectors[:40])
    found, scores = index.search(vectors[:2], 50)
    assert found.shape == (2, 50)
    assert set(found[0][found[0] != MISSING_ID].tolist()) <= set(ids[:40].tolist())
    assert np.count_nonzero(found[0] != MISSING_ID) >= 30
    assert np.all(np.isneginf(scores[found == MISSING_ID]))


def test_add_after_load(built: tuple[VectorIndex, Path], data: tuple[np.ndarray, np.ndarray], case: str) -> None:
    index, directory = built
    ids, vectors = data
    can_add = CASES[case][2]
    loaded = type(index).load(directory, DIM, index.params, mmap=False)
    new_ids = np.array([7, 8], dtype=np.int64)
    new_vectors = -vectors[:2]  # far from everything near vectors[:2]
    if not can_add:
        with pytest.raises(ValueError, match="cannot add"):
            loaded.add(new_ids, new_vectors)
        return
    loaded.add(new_ids, new_vectors)
    assert len(loaded) == COUNT + 2
    found, _ = loaded.search(new_vectors, 1)
    assert found[:, 0].tolist() == [7, 8]


def test_memory_mapped_index_refuses_changes_or_takes_them(built: tuple[VectorIndex, Path], data: tuple[np.ndarray, np.ndarray], case: str) -> None:
    """A memory-mapped index is read-only where the library maps it so; the error says how to change it."""
    index, directory = built
    ids, vectors = data
    loaded = type(index).load(directory, DIM, index.params, mmap=True)
    try:
        loaded.add(np.array([5]), -vectors[:1])
    except ValueError as error:
        assert "read-only" in str(error) or "cannot add" in str(error)
    else:
        assert loaded.search(-vectors[:1], 1)[0][0, 0] == 5


def test_remove(built: tuple[VectorIndex, Path], data: tuple[np.ndarray, np.ndarray], case: str, tmp_path: Path) -> None:
    index, directory = built
    ids, vectors = data
    can_remove = CASES[case][3]
    loaded = type(index).load(directory, DIM, index.params, mmap=False)
    gone = ids[:100]
    if not can_remove:
        with pytest.raises(ValueError, match="cannot remove"):
            loaded.remove(gone)
        return
    loaded.remove(np.concatenate([gone, [123]]))  # an absent id is ignored
    assert len(loaded) == COUNT - 100
    found, _ = loaded.search(vectors[:100], 10)
    assert not np.isin(found, gone).any()
    assert np.all(found[:, 0] != MISSING_ID)
    # The removal survives a save and a load.
    loaded.save(tmp_path)
    reopened = type(index).load(tmp_path, DIM, index.params, mmap=True)
    assert len(reopened) == COUNT - 100
    assert not np.isin(reopened.search(vectors[:100], 10)[0], gone).any()


def test_vectors_are_handed_back_by_backends_that_keep_them(built: tuple[VectorIndex, Path], data: tuple[np.ndarray, np.ndarray]) -> None:
    index, directory = built
    ids, vectors = data
    if not index.keeps_vectors:
        with pytest.raises(NotImplementedError):
            index.vectors(ids[:3])
        return
    loaded = type(index).load(directory, DIM, index.params, mmap=True)
    np.testing.assert_allclose(loaded.vectors(ids[[5, 0, 9]]), vectors[[5, 0, 9]], atol=0.02)


@pytest.mark.parametrize("name, module, extra", [("annoy", "annoy", "annoy"), ("faiss", "faiss", "faiss"), ("hnswlib", "hnswlib", "hnswlib")])
def test_a_missing_library_names_its_extra(monkeypatch: pytest.MonkeyPatch, name: str, module: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail as if not installed
    with pytest.raises(MissingExtraError, match=rf"pip install 'semsearch\[{extra}\]'"):
        create_index(name, DIM)


def test_faiss_rejects_a_bad_factory_string() -> None:
    with pytest.raises(SemsearchError, match="faiss cannot make an index from 'IVF-nonsense'"):
        create_index("faiss", DIM, {"index": "IVF-nonsense"})


def test_faiss_too_few_vectors_to_train_is_a_clear_error(data: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vectors = data
    index = create_index("faiss", DIM, {"index": "IVF4096,Flat"})
    index.add(ids[:500], vectors[:500])
    with pytest.raises(SemsearchError, match=r"cannot be trained on 500 vectors.*IVF12,Flat"):
        index.search(vectors[:1], 10)


def test_faiss_refuses_a_search_parameter_its_index_lacks() -> None:
    with pytest.raises(SemsearchError, match="has no parameter nprobe"):
        create_index("faiss", DIM, {"index": "HNSW16", "nprobe": 8})


def test_faiss_works_after_usearch_was_loaded() -> None:
    """usearch's compiled module once made faiss.index_factory crash when imported first; run in a fresh process."""
    script = (
        "import numpy as np\n"
        "from semsearch.backends import create_index\n"
        "vectors = np.eye(64, 32, dtype=np.float32)\n"
        "create_index('usearch', 32).add(np.arange(64), vectors)\n"
        "index = create_index('faiss', 32, {'index': 'IVF4,Flat'})\n"
        "index.add(np.arange(64), vectors)\n"
        "print(index.search(vectors[:1], 1)[0][0, 0])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


@pytest.mark.parametrize("case", ["exact", "usearch-i8", "hnswlib", "faiss-ivf-sq8", "faiss-hnsw", "annoy"])
def test_a_collection_builds_opens_and_searches_with_each_backend(case: str, tmp_path: Path, sample_csv: Path, fake_encoder) -> None:
    from semsearch import Collection

    name, params = CASES[case][0], dict(CASES[case][1])
    if name == "faiss":
        params["index"] = params["index"].replace("IVF16", "IVF8")
    path = tmp_path / "news.semsearch"
    Collection.build(sample_csv, path, encoder=fake_encoder, backend=name, backend_params=params, limit=600).close()
    with Collection.open(path, encoder=fake_encoder) as collection:
        assert collection.manifest["backend"]["name"] == name
        assert collection.manifest["backend"]["params"] == collection.index.params
        assert (path / "vectors.npy").exists() != collection.index.keeps_vectors
        some = collection.store.get([17])[17]
        hits = collection.search(some.text, k=3)
        assert hits[0].text == some.text
