"""Filtered search: a date range and metadata equality, k hits whenever k documents match."""

from __future__ import annotations

import csv
import datetime
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from semsearch import Collection
from semsearch.errors import SemsearchError
from semsearch.filters import Filter, FilterError, parse_where
from tests.conftest import SAMPLE_CSV, FakeEncoder

QUERIES = ["police investigate death", "drought hits farmers", "war in iraq", "new hospital funding", "cricket team wins"]


@pytest.fixture(scope="module")
def desk_collection(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    """The 21,293 sample headlines on usearch; metadata ``desk`` is "science" for 1% of them (every 100th row)."""
    directory = tmp_path_factory.mktemp("filters")
    source = directory / "headlines.csv"
    with gzip.open(SAMPLE_CSV, "rt", encoding="utf-8") as stream, source.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        for number, row in enumerate(csv.reader(stream)):
            writer.writerow([*row, "desk"] if number == 0 else [*row, "science" if (number - 1) % 100 == 0 else "general"])
    collection = Collection.build(source, directory / "desk.semsearch", encoder=FakeEncoder(), backend="usearch")
    yield collection
    collection.close()


def exact_scores(collection: Collection, query: str, ids: np.ndarray, k: int) -> list[float]:
    """Brute force over the given ids: the k best scores a filtered search must give (ids tie too often to compare)."""
    scores = collection.vectors(ids) @ collection.encoder.encode([query])[0]
    return [round(float(score), 3) for score in np.sort(scores)[::-1][:k]]


def scores_of(hits) -> list[float]:
    return [round(hit.score, 3) for hit in hits]


def test_a_filter_matching_one_percent_returns_k_hits(desk_collection: Collection) -> None:
    matching = desk_collection.store.matching_ids(Filter.of(where={"desk": "science"}))
    assert len(matching) == 213  # 1% of 21,293
    for query in QUERIES:
        hits = desk_collection.search(query, k=10, where={"desk": "science"})
        assert len(hits) == 10
        assert all(hit.meta["desk"] == "science" for hit in hits)
        assert scores_of(hits) == exact_scores(desk_collection, query, matching, 10)
        unfiltered = desk_collection.search(query, k=10)
        assert sum(hit.meta["desk"] == "science" for hit in unfiltered) < 10, "filtering after a plain top 10 would not do"


def test_widening_the_candidates_finds_k_matches(desk_collection: Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter matching a large share (a month, about 30%): the index is asked for more candidates until k match."""
    import semsearch.search.retrieval

    monkeypatch.setattr(semsearch.search.retrieval, "EXACT_SUBSET_LIMIT", 0)
    searches: list[int] = []
    original = desk_collection.index.search

    def counting_search(queries, k, **params):
        searches.append(k)
        return original(queries, k, **params)

    monkeypatch.setattr(desk_collection.index, "search", counting_search)
    month = {"date_from": "2003-04-01", "date_to": "2003-04-30"}
    matching = desk_collection.store.matching_ids(Filter.of(**month))
    assert 0.2 < len(matching) / len(desk_collection) < 0.4
    for query in QUERIES:
        hits = desk_collection.search(query, k=10, **month)
        assert len(hits) == 10 and all(datetime.date(2003, 4, 1) <= hit.date <= datetime.date(2003, 4, 30) for hit in hits)
        expected = exact_scores(desk_collection, query, matching, 10)
        assert scores_of(hits)[0] == expected[0] and scores_of(hits)[9] >= expected[9] - 0.1, "approximate, but near the exact answer"
    assert searches and all(10 < k < len(matching) for k in searches), "candidates, not the whole subset"


def test_a_small_share_is_scanned_exactly_even_when_many_match(desk_collection: Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    """1% matching: the first round of candidates would outnumber the matches, so they are scored exactly."""
    import semsearch.search.retrieval

    monkeypatch.setattr(semsearch.search.retrieval, "EXACT_SUBSET_LIMIT", 0)
    monkeypatch.setattr(desk_collection.index, "search", lambda *a, **o: pytest.fail("the index is not asked"))
    assert len(desk_collection.search("police", k=10, where={"desk": "science"})) == 10


def test_a_count_stops_at_its_limit_and_a_share_is_sampled(desk_collection: Collection) -> None:
    """A large filter is counted to COUNT_LIMIT only, and its share then estimated from keys spread evenly."""
    segment = desk_collection.segments[0]
    month = Filter.of("2003-04-01", "2003-04-30")
    matching = segment.count_matching(month)
    assert matching > 5_000
    assert segment.count_matching(month, limit=1_000) == 1_000
    assert segment.count_matching(month, limit=matching + 5) == matching
    assert segment.count_matching(Filter.of(where={"desk": "nonexistent"}), limit=10) == 0
    share = segment.sampled_share(month, 1_024)
    assert abs(share - matching / len(desk_collection)) < 0.05
    assert share == segment.sampled_share(month, 1_024), "the same sample every time"
    science = segment.sampled_share(Filter.of(where={"desk": "science"}), 1_024)
    assert 0 < science < 0.03  # 1% of rows, every 100th: the evenly spread sample finds about that


def test_past_the_count_limit_the_sampled_share_sizes_the_candidates(desk_collection: Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the count stopped early, the first round asks for k * 2 / share candidates, not k * 2 / (limit / total)."""
    import semsearch.search.retrieval

    monkeypatch.setattr(semsearch.search.retrieval, "COUNT_LIMIT", 500)
    searches: list[int] = []
    original = desk_collection.index.search
    monkeypatch.setattr(desk_collection.index, "search", lambda queries, k, **params: (searches.append(k), original(queries, k, **params))[1])
    month = {"date_from": "2003-04-01", "date_to": "2003-04-30"}
    matching = desk_collection.store.matching_ids(Filter.of(**month))
    for query in QUERIES:
        searches.clear()
        hits = desk_collection.search(query, k=10, **month)
        assert len(hits) == 10 and all(datetime.date(2003, 4, 1) <= hit.date <= datetime.date(2003, 4, 30) for hit in hits)
        assert scores_of(hits)[0] == exact_scores(desk_collection, query, matching, 10)[0]
        assert searches[0] <= 10 * 2 * len(desk_collection) // len(matching) * 1.5, searches
    monkeypatch.setattr(semsearch.search.retrieval, "SCAN_RATIO", 10**6)
    monkeypatch.setattr(desk_collection.index, "search", lambda *a, **o: (searches.append(-1), original(*a, **o))[1])
    searches.clear()
    desk_collection.search(QUERIES[0], k=10, **month)
    assert searches, "past the count limit the matches are never scanned exactly: their number is not known"


def test_date_range_is_inclusive_and_returns_k(desk_collection: Collection) -> None:
    start, end = datetime.date(2003, 3, 20), datetime.date(2003, 3, 21)
    in_range = desk_collection.store.matching_ids(Filter.of(start, end))
    for query in QUERIES:
        hits = desk_collection.search(query, k=20, date_from="2003-03-20", date_to=end)
        assert len(hits) == 20
        assert all(start <= hit.date <= end for hit in hits)
        assert scores_of(hits) == exact_scores(desk_collection, query, in_range, 20)
    one_day = desk_collection.search(QUERIES[0], k=5, date_from="2003-03-20", date_to="2003-03-20")
    assert {hit.date for hit in one_day} == {start}


def test_filters_combine(desk_collection: Collection) -> None:
    hits = desk_collection.search("police", k=50, date_from="2003-04-01", where={"desk": "science"})
    expected = desk_collection.store.count_matching(Filter.of("2003-04-01", None, {"desk": "science"}))
    assert len(hits) == min(50, expected) and expected > 0
    assert all(hit.date >= datetime.date(2003, 4, 1) and hit.meta["desk"] == "science" for hit in hits)


def test_fewer_matches_than_k_gives_all_of_them(desk_collection: Collection) -> None:
    assert desk_collection.search("police", k=10, where={"desk": "nonexistent"}) == []
    hits = desk_collection.search("police", k=10, date_from="2003-02-19", date_to="2003-02-19", where={"desk": "science"})
    assert 0 < len(hits) < 10


@pytest.mark.parametrize(("backend", "params"), [("exact", {}), ("annoy", {}), ("faiss", {"index": "HNSW16"})])
def test_metadata_values_of_json_types(tmp_path: Path, fake_encoder, backend: str, params: dict) -> None:
    """Also the exact scan from vectors.npy, for backends that keep no vectors (annoy, faiss)."""
    source = tmp_path / "docs.jsonl"
    rows = [
        {"text": "storm hits coast", "priority": 3, "live": True, "region": "north"},
        {"text": "storm damages homes", "priority": 1, "live": False, "region": "south"},
        {"text": "storm warning issued", "priority": 3, "live": False, "region": None},
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with Collection.build(source, tmp_path / "c.semsearch", encoder=fake_encoder, backend=backend, backend_params=params) as collection:
        assert {h.id for h in collection.search("storm", k=5, where={"priority": 3})} == {0, 2}
        assert {h.id for h in collection.search("storm", k=5, where={"priority": "3"})} == {0, 2}, "text from a command line matches a number"
        assert {h.id for h in collection.search("storm", k=5, where={"live": True})} == {0}
        assert {h.id for h in collection.search("storm", k=5, where={"region": None})} == {2}
        assert {h.id for h in collection.search("storm", k=5, where={"priority": 3, "region": "north"})} == {0}
        with pytest.raises(FilterError, match="no document has a metadata field .no such field.; the fields are live, priority, region"):
            collection.search("storm", k=5, where={"no such field": "x"})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"date_from": "2003-13-01"}, "date_from: '2003-13-01' is not a date; expected YYYY-MM-DD"),
        ({"date_to": "20030301"}, "date_to: '20030301' is not a date"),
        ({"date_from": "2003-05-01", "date_to": "2003-04-01"}, "date_from 2003-05-01 is after date_to 2003-04-01"),
        ({"where": {'a"b': "x"}}, "metadata field 'a\"b'"),
        ({"where": {"desk": ["a", "b"]}}, "can only compare with text, a number"),
    ],
)
def test_bad_filters_are_clear_errors(arguments: dict, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(")):
        Filter.of(**arguments)


def test_bad_filters_through_search_and_where_parsing(desk_collection: Collection) -> None:
    with pytest.raises(SemsearchError, match="not a date"):
        desk_collection.search("police", date_from="yesterday")
    with pytest.raises(SemsearchError, match="no search mode 'fuzzy'"):
        desk_collection.search("police", mode="fuzzy")
    assert parse_where(("desk=science", "region=a=b")) == {"desk": "science", "region": "a=b"}
    with pytest.raises(FilterError, match="expected FIELD=VALUE"):
        parse_where(("desk",))
