"""Reducers (random projection, PCA), the reduced index with re-ranking, and collections built with them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Collection, Document
from semsearch.cli import cli
from semsearch.errors import MissingExtraError, SemsearchError
from semsearch.bench.evaluate import recall_at_k
from semsearch.backends.factory import REDUCER_FILE, PrincipalComponents, RandomProjection, Reducer, new_index, parse_reducer


def low_rank_vectors(count: int = 3000, dim: int = 64, rank: int = 8, seed: int = 3) -> np.ndarray:
    """Unit vectors that vary mostly within an 8-dimensional subspace, like embeddings do within a few directions."""
    generator = np.random.default_rng(seed)
    basis = np.linalg.qr(generator.normal(size=(dim, rank)))[0].T
    vectors = generator.normal(size=(count, rank)) @ basis + 0.02 * generator.normal(size=(count, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def neighbours(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("spec, kind, dim", [("random-projection:64", "random-projection", 64), ("pca:128", "pca", 128)])
def test_parse_reducer(spec: str, kind: str, dim: int) -> None:
    reducer = parse_reducer(spec)
    assert reducer.spec() == {"kind": kind, "dim": dim}


@pytest.mark.parametrize("spec", ["pca", "pca:x", "svd:10", "random-projection:"])
def test_a_bad_reducer_spec_says_what_is_expected(spec: str) -> None:
    with pytest.raises(SemsearchError, match="expected KIND:DIMENSIONS with KIND one of random-projection, pca"):
        parse_reducer(spec)


def test_reducing_to_as_many_dimensions_is_refused() -> None:
    with pytest.raises(SemsearchError, match="cannot reduce 64 dimensions to 64"):
        new_index("exact", 64, reducer="pca:64")


def test_random_projection_is_seeded_and_saved_without_pickle(tmp_path: Path) -> None:
    vectors = low_rank_vectors()
    first, second = RandomProjection(16), RandomProjection(16)
    first.fit(vectors[:500])
    second.fit(vectors[500:1000])  # the Gaussian matrix depends on the seed, not on the sample
    np.testing.assert_array_equal(first.components, second.components)
    reduced = first.transform(vectors)
    assert reduced.shape == (3000, 16)
    np.testing.assert_allclose(np.linalg.norm(reduced, axis=1), 1.0, atol=1e-5)
    assert first.save(tmp_path) == [REDUCER_FILE]
    with np.load(tmp_path / REDUCER_FILE, allow_pickle=False) as saved:
        assert sorted(saved.files) == ["components", "kind", "mean"]
    loaded = Reducer.load(tmp_path)
    assert isinstance(loaded, RandomProjection)
    np.testing.assert_allclose(loaded.transform(vectors), reduced, atol=1e-6)


def test_pca_keeps_neighbours_that_random_projection_loses() -> None:
    """Reduced to the data's 8 directions, PCA keeps nearly all neighbours; a random projection to 8 does not."""
    vectors = low_rank_vectors()
    queries, corpus = vectors[:100], vectors[100:]
    truth = neighbours(corpus, queries)
    recalls = {}
    for reducer in (PrincipalComponents(8), RandomProjection(8)):
        reducer.fit(corpus)
        recalls[reducer.kind] = recall_at_k(neighbours(reducer.transform(corpus), reducer.transform(queries)), truth)
    assert recalls["pca"] >= 0.9
    assert recalls["random-projection"] < recalls["pca"] - 0.2
    pca = PrincipalComponents(8)
    pca.fit(corpus)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(8), atol=1e-4)


def test_fitting_without_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'semsearch\[reduce\]'"):
        PrincipalComponents(4).fit(low_rank_vectors(count=50))


def test_reduced_index_fits_on_the_first_vectors_and_searches_reduced() -> None:
    vectors = low_rank_vectors()
    ids = np.arange(len(vectors), dtype=np.int64) + 500
    index = new_index("hnswlib", 64, {"M": 8}, "pca:8")
    for start in range(0, len(ids), 1000):
        index.add(ids[start : start + 1000], vectors[start : start + 1000])
    assert len(index) == 3000
    assert index.inner.dim == 8  # type: ignore[attr-defined]
    found, _ = index.search(vectors[:50], 10)
    assert recall_at_k(found, ids[neighbours(vectors, vectors[:50])]) >= 0.85


@pytest.fixture
def reduced_collection(tmp_path: Path, sample_csv: Path, fake_encoder) -> Path:
    path = tmp_path / "reduced.semsearch"
    Collection.build(sample_csv, path, encoder=fake_encoder, backend="usearch", reduce="random-projection:8", limit=800).close()
    return path


def test_a_reduced_collection_records_its_reducer_and_keeps_full_vectors(reduced_collection: Path, fake_encoder) -> None:
    with Collection.open(reduced_collection, encoder=fake_encoder) as collection:
        assert collection.manifest["reducer"] == {"kind": "random-projection", "dim": 8, "rerank": 0}
        files = set(collection.manifest["files"])
        assert {REDUCER_FILE, "vectors.npy", "vectors.ids.npy"} <= files
        assert np.load(reduced_collection / "vectors.npy", mmap_mode="r").shape == (800, 64)


def test_rerank_scores_are_cosines_in_the_full_space(reduced_collection: Path, fake_encoder) -> None:
    with Collection.open(reduced_collection, encoder=fake_encoder) as collection:
        document = collection.store.get([33])[33]
        query = fake_encoder.encode([document.text])[0]
        plain = collection.search(document.text, k=5)
        reranked = collection.search(document.text, k=5, rerank=400)
        assert reranked[0].id == 33
        full = {hit.id: float(fake_encoder.encode([hit.text])[0] @ query) for hit in reranked}
        for hit in reranked:
            assert hit.score == pytest.approx(full[hit.id], abs=2e-3)  # float16 storage
        # Without re-ranking the scores are cosines in the 8 projected dimensions, and differ.
        assert any(abs(hit.score - float(fake_encoder.encode([hit.text])[0] @ query)) > 0.01 for hit in plain)


def test_a_reduced_collection_takes_updates(reduced_collection: Path, fake_encoder) -> None:
    with Collection.open(reduced_collection, encoder=fake_encoder) as collection:
        collection.add([Document(id=10_000, text="zebra crossing painted purple in melbourne", date=None, meta={})])
        collection.remove([33])
    with Collection.open(reduced_collection, encoder=fake_encoder) as collection:
        assert collection.manifest["reducer"]["kind"] == "random-projection"
        hits = collection.search("zebra crossing painted purple in melbourne", k=3, rerank=200)
        assert hits[0].id == 10_000
        assert 33 not in [hit.id for hit in collection.search(collection.store.get([34])[34].text, k=800, rerank=800)]


def test_cli_build_with_reduce_then_search_with_rerank(tmp_path: Path) -> None:
    path = tmp_path / "news.semsearch"
    result = CliRunner().invoke(cli, ["build", "abcnews-sample", "-o", str(path), "--limit", "400", "--quiet", "--reduce", "pca:32"])
    assert result.exit_code == 0, result.output
    info = CliRunner().invoke(cli, ["info", str(path)])
    assert "reducer:    pca to 32 dimensions" in info.output
    assert json.loads(CliRunner().invoke(cli, ["info", str(path), "--json"]).output)["reducer"] == {"kind": "pca", "dim": 32, "rerank": 0}
    result = CliRunner().invoke(cli, ["search", str(path), "rain and floods", "-k", "3", "--json", "--param", "rerank=100"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)["hits"]
    assert len(hits) == 3
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    bad = CliRunner().invoke(cli, ["build", "abcnews-sample", "-o", str(tmp_path / "x"), "--limit", "50", "--reduce", "pca"])
    assert bad.exit_code == 1
    assert "expected KIND:DIMENSIONS" in bad.output

