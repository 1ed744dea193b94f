"""Keyword search (SQLite FTS5, BM25) and hybrid search (reciprocal rank fusion with the semantic ranking)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semsearch import Collection, Document
from semsearch.errors import SemsearchError
from semsearch.search.retrieval import RRF_CONSTANT, fuse

TEXTS = [
    "rivkin pleads not guilty to insider trading",
    "stockbroker faces court on trading charges",
    "police find body in river",
    "council approves new budget for roads",
    "rivkin trial aborted",
    "drought hits farmers in the north",
    "insider trading laws to be tightened",
]


@pytest.fixture
def collection(tmp_path: Path, fake_encoder) -> Collection:
    source = tmp_path / "news.jsonl"
    rows = [{"text": text, "date": f"2003-03-{10 + i}", "desk": "business" if "trading" in text else "general"} for i, text in enumerate(TEXTS)]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with Collection.build(source, tmp_path / "news.semsearch", encoder=fake_encoder, backend="usearch") as built:
        yield built


def test_fusion_sums_reciprocal_ranks() -> None:
    semantic = [(1, 0.9), (2, 0.8), (3, 0.7)]
    keyword = [(3, 12.0), (4, 11.0)]
    fused = fuse([semantic, keyword], k=10)
    expected = {1: 1 / (RRF_CONSTANT + 1), 2: 1 / (RRF_CONSTANT + 2), 3: 1 / (RRF_CONSTANT + 3) + 1 / (RRF_CONSTANT + 1), 4: 1 / (RRF_CONSTANT + 2)}
    assert [document_id for document_id, _ in fused] == [3, 1, 2, 4]
    assert dict(fused) == pytest.approx(expected)
    assert fuse([semantic, keyword], k=2) == fused[:2]


def test_keyword_ranks_documents_with_more_of_the_words_first(collection: Collection) -> None:
    hits = collection.search("rivkin insider trading", k=10, mode="keyword")
    ids = [hit.id for hit in hits]
    assert ids[0] == 0, "the only headline with all three words"
    assert set(ids) == {0, 1, 4, 6}, "every headline with any of the words, none without"
    assert all(a.score >= b.score > 0 for a, b in zip(hits, hits[1:]))


@pytest.mark.parametrize("query", ['"rivkin', "rivkin AND", "NEAR(rivkin", "rivkin*", "-rivkin", "rivkin OR", "text:rivkin", "^rivkin"])
def test_fts_syntax_in_a_query_is_matched_as_words(collection: Collection, query: str) -> None:
    assert {hit.id for hit in collection.search(query, k=10, mode="keyword")} >= {0, 4}


@pytest.mark.parametrize("query", ["?!", "—"])
def test_a_query_without_words_finds_nothing_by_keyword(collection: Collection, query: str) -> None:
    assert collection.search(query, k=5, mode="keyword") == []


@pytest.mark.parametrize("mode", ["semantic", "keyword", "hybrid"])
@pytest.mark.parametrize("query", ["", "   "])
def test_a_blank_query_is_a_mistake_not_arbitrary_hits(collection: Collection, query: str, mode: str) -> None:
    with pytest.raises(SemsearchError, match="the query is blank"):
        collection.search(query, k=5, mode=mode)


def test_keyword_and_hybrid_honour_filters(collection: Collection) -> None:
    for mode in ("keyword", "hybrid"):
        hits = collection.search("rivkin trading", k=10, mode=mode, where={"desk": "business"}, date_to="2003-03-15")
        assert {hit.id for hit in hits} <= {0, 1}
        assert 0 in {hit.id for hit in hits}


def test_hybrid_finds_what_either_ranking_finds(collection: Collection) -> None:
    keyword = [hit.id for hit in collection.search("rivkin", k=3, mode="keyword")]
    semantic = [hit.id for hit in collection.search("rivkin", k=3, mode="semantic")]
    hybrid = collection.search("rivkin", k=len(TEXTS), mode="hybrid")
    assert set(keyword) | set(semantic) <= {hit.id for hit in hybrid}
    assert hybrid[0].id in keyword and hybrid[0].id in semantic
    assert all(0 < hit.score <= 2 / (RRF_CONSTANT + 1) for hit in hybrid)


def test_keyword_index_follows_updates(collection: Collection) -> None:
    collection.upsert([Document(id=4, text="kangaroo escapes from zoo"), Document(id=20, text="rivkin appeal lodged")])
    collection.remove([0])
    assert {hit.id for hit in collection.search("rivkin", k=10, mode="keyword")} == {20}
    assert [hit.id for hit in collection.search("kangaroo", k=10, mode="keyword")] == [4]
    reopened = Collection.open(collection.path, encoder=collection.encoder)
    assert {hit.id for hit in reopened.search("rivkin", k=10, mode="keyword")} == {20}
