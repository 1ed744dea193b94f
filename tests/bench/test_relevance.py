"""hit@k and MRR@k against hand-picked wanted ids, the Spanish query set, and what the default encoder does with it."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from semsearch.errors import SemsearchError
from semsearch.bench.relevance import first_wanted_rank, hit_at_k, mrr_at_k, read_queries

DATA = Path(__file__).parents[1] / "data"
SPANISH = DATA / "queries-spanish.jsonl"


def test_ranks_hits_and_reciprocal_ranks() -> None:
    found = [[5, 3, 9], [1, 2, 4], [7, 8, 6]]
    wanted = [frozenset({9, 3}), frozenset({4}), frozenset({0})]
    assert [first_wanted_rank(row, want, 3) for row, want in zip(found, wanted)] == [2, 3, None]
    assert first_wanted_rank(found[1], wanted[1], 2) is None  # beyond k does not count
    assert hit_at_k(found, wanted, 3) == pytest.approx(2 / 3)
    assert mrr_at_k(found, wanted, 3) == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert hit_at_k(found, wanted, 2) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        hit_at_k(found, wanted[:2], 3)


def test_read_queries_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text('{"query": "a", "ids": [1], "kind": "paraphrase"}\n\n{"query": "b"}\n')
    with pytest.raises(SemsearchError, match=r"queries.jsonl, line 3: expected"):
        read_queries(path)


def test_the_spanish_queries_name_real_headlines_and_are_not_english(sample_csv: Path) -> None:
    with gzip.open(sample_csv, "rt", encoding="utf-8") as stream:
        headlines = [row[1] for row in list(csv.reader(stream))[1:]]
    records = [json.loads(line) for line in SPANISH.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 15 and len({record["query"] for record in records}) == len(records)
    for record in records:
        assert set(record) == {"query", "ids", "kind"} and record["kind"] == "spanish"
        assert record["ids"] and all(0 <= i < len(headlines) for i in record["ids"])
        assert set(record["query"].split()) & {"el", "la", "los", "las", "un", "una", "de", "por", "en"}, record["query"]


def test_the_multilingual_default_finds_english_headlines_for_spanish_queries(small_real_collection) -> None:
    """The claim the README makes for USE multilingual, on the queries whose headlines are in the first 3,000."""
    queries = [query for query in read_queries(SPANISH) if max(query.wanted) < len(small_real_collection)]
    assert len(queries) >= 10
    found = [[hit.id for hit in hits] for hits in small_real_collection.search([query.text for query in queries], k=10)]
    assert hit_at_k(found, [query.wanted for query in queries], 10) >= 0.6
