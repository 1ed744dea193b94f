"""Every document findable: what an approximate index cannot find by a document's own vector is scored exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from semsearch import Collection, Document
from semsearch.errors import SemsearchError
from semsearch.backends import BACKENDS
from semsearch.backends.exact import ExactIndex
from semsearch.backends.reachability import Orphans, find_orphans
from semsearch.storage.layout import ORPHANS_FILE

HIDDEN = {5, 17, 120}  # ids the lossy index never returns, like a graph node without incoming links


class LossyIndex(ExactIndex):
    """An exact index that cannot find some documents: a stand-in for an HNSW graph's unreachable nodes."""

    name = "lossy"  # type: ignore[assignment]

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = super().search(queries, k + len(HIDDEN), **params)
        keep = ~np.isin(ids, list(HIDDEN))
        rows = [(row_ids[row_keep][:k], row_scores[row_keep][:k]) for row_ids, row_scores, row_keep in zip(ids, scores, keep)]
        return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


@pytest.fixture
def lossy_backend(monkeypatch: pytest.MonkeyPatch) -> str:
    from semsearch.storage import manifest_checks

    monkeypatch.setitem(BACKENDS, "lossy", f"{__name__}:LossyIndex")
    monkeypatch.setattr(manifest_checks, "KNOWN_BACKENDS", (*manifest_checks.KNOWN_BACKENDS, "lossy"))  # what a manifest may name
    return "lossy"


def test_the_check_finds_what_the_index_cannot(lossy_backend: str) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((200, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = LossyIndex(8)
    index.add(np.arange(200), vectors)
    ids, found = find_orphans(index, [(np.arange(100), vectors[:100]), (np.arange(100, 200), vectors[100:])])
    assert set(ids.tolist()) == HIDDEN
    np.testing.assert_allclose(found, vectors[sorted(HIDDEN)], rtol=1e-6)


def test_a_duplicate_that_ties_first_is_not_an_orphan() -> None:
    index = ExactIndex(4)
    vector = np.array([[1, 0, 0, 0]], dtype=np.float32)
    index.add(np.array([1, 2]), np.concatenate([vector, vector]))
    index.name = "usearch"  # only to be checked: exact would be skipped
    ids, _ = find_orphans(index, [(np.array([1, 2]), np.concatenate([vector, vector]))])
    assert ids.tolist() == []


class CheapPassLossyIndex(LossyIndex):
    """A lossy index whose cheap first pass (``self_search_params``) loses more documents than its real search does."""

    name = "cheap-lossy"  # type: ignore[assignment]
    search_params = ("cheap",)
    self_search_params = {"cheap": True}
    searched: list[int] = []

    def search(self, queries: np.ndarray, k: int, **params: Any) -> tuple[np.ndarray, np.ndarray]:
        self.searched.append(len(queries))
        ids, scores = super().search(queries, k)
        if params.get("cheap"):  # also misses every tenth document's own vector
            for row, row_ids in enumerate(ids):
                if row_ids[0] % 10 == 0:
                    ids[row, 0], scores[row, 0] = -1, -np.inf
        return ids, scores


def test_the_cheap_first_pass_is_checked_again_with_the_real_search() -> None:
    """Only what the cheap pass misses is searched again, and the orphans are those the real search misses."""
    vectors = np.random.default_rng(4).normal(size=(200, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = CheapPassLossyIndex(16)
    index.add(np.arange(200), vectors)
    index.searched.clear()
    ids, _ = find_orphans(index, [(np.arange(200), vectors)])
    assert set(ids.tolist()) == HIDDEN
    assert index.searched == [200, 20 + len(HIDDEN) - 1]  # every document, then the multiples of 10 and the hidden (120 is both)


def test_orphans_merge_into_results_once_and_by_score() -> None:
    orphans = Orphans(np.array([9, 4]), np.array([[1, 0], [0, 1]], dtype=np.float32))
    queries = np.array([[1, 0], [0.6, 0.8]], dtype=np.float32)
    ids = np.array([[1, 2], [4, -1]])
    scores = np.array([[0.9, 0.5], [0.8, -np.inf]], dtype=np.float32)
    merged_ids, merged_scores = orphans.merge(queries, ids, scores)
    assert merged_ids.tolist() == [[9, 1], [4, 9]]
    np.testing.assert_allclose(merged_scores, [[1.0, 0.9], [0.8, 0.6]], rtol=1e-6)


def test_a_collection_finds_every_document_by_its_own_text(lossy_backend: str, tmp_path: Path, sample_csv: Path, fake_encoder,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import semsearch.search.retrieval

    path = tmp_path / "news.semsearch"
    with Collection.build(sample_csv, path, encoder=fake_encoder, backend=lossy_backend, limit=400) as collection:
        assert (path / ORPHANS_FILE).is_file() and set(collection.segments[0].orphans.ids.tolist()) == HIDDEN
        texts = collection.store.get(sorted(HIDDEN))
        for document_id, document in texts.items():
            assert collection.search(document.text, k=3)[0].id == document_id
            assert collection.search(document.text, k=3, date_from="2000-01-01")[0].id == document_id  # filtered too
        # Filtered through the index's candidates (not an exact scan of the matches): an orphan the filter
        # matches is found, one it does not match is left out.
        monkeypatch.setattr(semsearch.search.retrieval, "EXACT_SUBSET_LIMIT", 0)
        monkeypatch.setattr(semsearch.search.retrieval, "SCAN_RATIO", 0)
        for document_id, document in texts.items():
            day = document.date.isoformat()
            assert collection.search(document.text, k=3, date_from=day, date_to=day)[0].id == document_id
            assert document_id not in {hit.id for hit in collection.search(document.text, k=3, date_to="2000-01-01")}
    with Collection.open(path, encoder=fake_encoder) as reopened:
        assert set(reopened.segments[0].orphans.ids.tolist()) == HIDDEN
        reopened.remove([5])
        base = reopened.segments[0]
        assert set(base.orphans.ids.tolist()) - base.deleted_keys == HIDDEN - {5}, "a removed orphan is deleted like any document"
        assert 5 not in {hit.id for hit in reopened.search(texts[5].text, k=3)}
        reopened.add([Document(id=120_000, text="an added headline")])
        assert reopened.search("an added headline", k=1)[0].id == 120_000


@pytest.mark.slow
def test_self_retrieval_of_every_document_with_the_real_encoder(small_real_collection: Collection) -> None:
    """Every one of the 3,000 real headlines finds itself first (or a document with the very same text)."""
    collection = small_real_collection
    documents = collection.store.get(collection.store.ids().tolist())
    ordered = sorted(documents.values(), key=lambda document: document.id)
    results = collection.search([document.text for document in ordered], k=5)
    lost = [document.id for document, hits in zip(ordered, results)
            if not hits or (hits[0].id != document.id and hits[0].text != document.text)]
    assert lost == []


def test_a_small_usearch_index_is_searched_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the limit a search is brute force: the exact top k, whatever the graph would have missed."""
    from semsearch.backends import create_index, usearch

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((3_000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:50] + 0.3 * rng.standard_normal((50, 32)).astype(np.float32)
    index = create_index("usearch", 32, {"connectivity": 2, "expansion_add": 2, "expansion_search": 2})  # a poor graph on purpose
    index.add(np.arange(3_000), vectors)
    exact = ExactIndex(32)
    exact.add(np.arange(3_000), vectors)
    truth, _ = exact.search(queries, 10)
    found, _ = index.search(queries, 10)
    assert (found == truth).mean() > 0.99  # f16 rounding may swap a near tie
    monkeypatch.setattr(usearch, "EXACT_SEARCH_LIMIT", 0)
    graph, _ = index.search(queries, 10)
    assert (graph == truth).mean() < (found == truth).mean()  # the poor graph alone misses some


def _rewrite_orphans(path: Path, make: Any) -> None:
    """Replace orphans.npz with what ``make(ids, vectors)`` writes, and recompute its size and checksum, as a stranger would."""
    import hashlib
    import io
    import json

    with np.load(path / ORPHANS_FILE, allow_pickle=False) as saved:
        ids, vectors = saved["ids"], saved["vectors"]
    data = make(ids, vectors)
    if not isinstance(data, bytes):
        stream = io.BytesIO()
        np.savez(stream, **data)
        data = stream.getvalue()
    (path / ORPHANS_FILE).write_bytes(data)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][ORPHANS_FILE] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name, make", [
    ("NaN vectors", lambda ids, vectors: {"ids": ids, "vectors": np.full_like(vectors, np.nan)}),
    ("vectors of another dimension", lambda ids, vectors: {"ids": ids, "vectors": vectors[:, :-1]}),
    ("more ids than vectors", lambda ids, vectors: {"ids": np.append(ids, 999), "vectors": vectors}),
    ("repeated ids", lambda ids, vectors: {"ids": np.full_like(ids, ids[0]), "vectors": vectors}),
    ("negative ids", lambda ids, vectors: {"ids": -ids - 1, "vectors": vectors}),
    ("float ids", lambda ids, vectors: {"ids": ids.astype(np.float64), "vectors": vectors}),
    ("a missing member", lambda ids, vectors: {"ids": ids}),
    ("not an archive", lambda ids, vectors: b"PK\x03\x04 not really a zip file"),
    ("truncated", lambda ids, vectors: (lambda stream: (np.savez(stream, ids=ids, vectors=vectors), stream.getvalue()[:120])[1])(
        __import__("io").BytesIO())),
])
def test_a_crafted_orphans_file_is_one_line(lossy_backend: str, tmp_path: Path, sample_csv: Path, fake_encoder, name: str, make: Any) -> None:
    path = tmp_path / "news.semsearch"
    Collection.build(sample_csv, path, encoder=fake_encoder, backend=lossy_backend, limit=400).close()
    _rewrite_orphans(path, make)
    with pytest.raises(SemsearchError) as raised:
        with Collection.open(path, encoder=fake_encoder) as collection:
            collection.search("flood warning", k=3)
    assert "orphans.npz" in str(raised.value) and "\n" not in str(raised.value), name


def test_orphans_merge_equals_a_plain_merge_row_by_row() -> None:
    """Many queries at once, orphans the index also found, rows padded with missing ids: each row as if merged alone."""
    rng = np.random.default_rng(3)
    orphan_ids = rng.choice(500, size=40, replace=False)
    orphans = Orphans(orphan_ids, rng.standard_normal((40, 8)).astype(np.float32))
    queries = rng.standard_normal((30, 8)).astype(np.float32)
    ids = np.stack([rng.choice(500, size=12, replace=False) for _ in range(30)])
    ids[::4, -3:] = -1
    scores = np.sort(rng.standard_normal((30, 12)).astype(np.float32), axis=1)[:, ::-1].copy()
    merged_ids, merged_scores = orphans.merge(queries, ids, scores)
    for row in range(30):
        best = {int(i): float(s) for i, s in zip(ids[row], scores[row]) if i != -1}
        for orphan, score in zip(orphan_ids, queries[row] @ orphans.vectors.T):
            best.setdefault(int(orphan), float(score))
        expected = sorted(best.items(), key=lambda pair: -pair[1])[:12]
        assert [int(i) for i in merged_ids[row]] == [i for i, _ in expected]
        np.testing.assert_allclose(merged_scores[row], [s for _, s in expected], rtol=1e-5)
