"""Filters with operators, in Chroma's form and on the command line: numbers as numbers, dates as dates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semsearch import Collection
from semsearch.filters import Filter, FilterError, parse_where

ROWS = [
    {"text": "storm hits coast", "desk": "news", "year": 2003, "day": "2003-02-01", "score": 0.5},
    {"text": "storm damages homes", "desk": "business", "year": 2004, "day": "2004-06-30", "score": 2.5},
    {"text": "storm warning issued", "desk": "sport", "year": 2010, "day": "2010-01-09"},
    {"text": "storm over the market", "desk": "business", "year": 1999},
    {"text": "storm chaser film"},
]


@pytest.fixture
def collection(tmp_path: Path, fake_encoder) -> Collection:
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    with Collection.build(source, tmp_path / "c.semsearch", encoder=fake_encoder, backend="exact") as built:
        yield built


def ids(collection: Collection, where) -> set[int]:  # noqa: ANN001
    return {hit.id for hit in collection.search("storm", k=10, where=where)}


@pytest.mark.parametrize("where, expected", [
    ({"year": {"$gte": 2004}}, {1, 2}),
    ({"year": {"$gt": 2003, "$lt": 2010}}, {1}),
    ({"year": {"$lte": "2003"}}, {0, 3}),  # text that reads as a number compares as one
    ({"day": {"$gte": "2004-01-01"}}, {1, 2}),  # ISO dates compare as dates
    ({"desk": {"$in": ["business", "sport"]}}, {1, 2, 3}),
    ({"desk": {"$nin": ["business", "sport"]}}, {0, 4}),  # a document without the field is not in the list
    ({"desk": {"$ne": "business"}}, {0, 2, 4}),
    ({"desk": {"$eq": "news"}}, {0}),
    ({"score": {"$gt": 1}}, {1}),
    ({"$or": [{"desk": "sport"}, {"year": {"$lt": 2000}}]}, {2, 3}),
    ({"$and": [{"desk": "business"}, {"year": {"$gte": 2000}}]}, {1}),
])
def test_operators_select_what_they_say(collection: Collection, where: dict, expected: set[int]) -> None:
    assert ids(collection, where) == expected
    assert collection.count(where=where) == len(expected)


def test_the_command_line_says_the_same() -> None:
    assert parse_where(["desk=sport"]) == {"desk": "sport"}
    assert parse_where(["year>=2003", "year<2010"]) == {"year": {"$gte": "2003", "$lt": "2010"}}
    assert parse_where(["desk in (business, sport)"]) == {"desk": {"$in": ["business", "sport"]}}
    assert parse_where(["desk not in (sport)"]) == {"desk": {"$nin": ["sport"]}}
    assert parse_where(["desk!=sport"]) == {"desk": {"$ne": "sport"}}
    assert parse_where(["url=http://x?a=b"]) == {"url": "http://x?a=b"}


def test_command_line_conditions_search_like_the_dict(collection: Collection) -> None:
    assert ids(collection, parse_where(["year>=2004"])) == {1, 2}
    assert ids(collection, parse_where(["desk in (business,sport)", "year<2005"])) == {1, 3}


@pytest.mark.parametrize("where, message", [
    ({"year": {"$near": 3}}, "no operator '\\$near'"),
    ({"year": {"$in": []}}, "non-empty list"),
    ({"year": {"$gt": None}}, "cannot compare with null"),
    ({"year": 2**63}, "outside the range of a 64-bit integer"),
    ({"year": float("nan")}, "not a finite number"),
    ({"$or": "x"}, "non-empty list"),
    ({"$x": 1}, "not starting with \\$"),
    ({"year": {}}, "empty"),
])
def test_bad_conditions_are_one_line(where: dict, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        Filter.of(where=where)


def test_a_filter_is_bounded() -> None:
    with pytest.raises(FilterError, match="more than 64 conditions"):
        Filter.of(where={f"field{i}": i for i in range(65)})
    nested: dict = {"a": 1}
    for _ in range(10):
        nested = {"$and": [nested]}
    with pytest.raises(FilterError, match="nests"):
        Filter.of(where=nested)


def test_a_field_no_document_has_names_the_fields_there_are(collection: Collection) -> None:
    with pytest.raises(FilterError, match="no document has a metadata field 'dsk'; the fields are day, desk, score, year"):
        collection.search("storm", where={"dsk": "news"})
    with pytest.raises(FilterError, match="'dsk'"):
        collection.count(where={"dsk": "news"})
