"""Remembered filters: a filter used twice is answered from its matching keys, the same answers SQLite gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch import Collection
from semsearch.filters import Filter
from semsearch.search.filter_memory import FilterMemory, MatchingKeys
from semsearch.sources.corpus import Corpus
from tests.conftest import SAMPLE_CSV, FakeEncoder

QUERIES = ["police investigate death", "drought hits farmers", "new hospital funding"]
MONTH = {"date_from": "2003-03-01", "date_to": "2003-03-10"}  # about 600 of the 4,000


@pytest.fixture
def collection(tmp_path: Path) -> Collection:
    built = Collection.build(Corpus(SAMPLE_CSV, limit=4000), tmp_path / "memory.semsearch", encoder=FakeEncoder(), backend="usearch")
    yield built
    built.close()


def forbid_sqlite_filtering(segment, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*arguments, **keywords):
        raise AssertionError("a remembered filter asked SQLite")

    for name in ("count_matching", "sampled_share", "matching_keys", "filter_keys"):
        monkeypatch.setattr(segment.store, name, refuse)


def test_a_filter_is_remembered_on_its_second_use_then_asks_sqlite_nothing(collection: Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    segment = collection.segments[0]
    where = Filter.of(**MONTH)
    first = [collection.search(query, k=10, **MONTH) for query in QUERIES[:1]]
    assert segment.filters.get(where) is None, "one use is not enough"
    collection.search(QUERIES[1], k=10, **MONTH)
    assert segment.filters.get(where) is not None
    forbid_sqlite_filtering(segment, monkeypatch)
    again = [collection.search(query, k=10, **MONTH) for query in QUERIES[:1]]
    assert [[(hit.id, round(hit.score, 5)) for hit in hits] for hits in again] == [[(hit.id, round(hit.score, 5)) for hit in hits] for hits in first]
    assert all(len(hits) == 10 for hits in again)


@pytest.mark.parametrize("filters", [MONTH, {"date_from": "2003-02-19", "date_to": "2003-02-19"}, {"date_to": "2003-02-20"}])
def test_remembered_answers_are_sqlites(collection: Collection, filters: dict[str, str]) -> None:
    collection.remove([str(number) for number in range(0, 4000, 7)])  # deletions, which every answer must leave out
    segment = collection.segments[0]
    where = Filter.of(**filters)
    expected_keys = segment.matching_keys(where)
    expected_count = segment.count_matching(where)
    probe = list(range(-5, 4100, 3))
    expected_among = segment.filter_keys(probe, where)
    segment.count_matching(where)  # the second use
    remembered = segment.filters.get(where)
    assert remembered is not None and 0 < remembered.count == expected_count
    np.testing.assert_array_equal(segment.matching_keys(where), expected_keys)
    assert segment.filter_keys(probe, where) == expected_among
    assert segment.count_matching(where, 3) == min(3, expected_count)
    assert segment.sampled_share(where, 1024) == pytest.approx(expected_count / segment.entry.rows)


def test_an_update_starts_a_fresh_memory(collection: Collection) -> None:
    for query in QUERIES:
        collection.search(query, k=10, **MONTH)
    best = collection.search(QUERIES[0], k=1, **MONTH)[0]
    collection.remove([best.id])
    assert best.id not in {hit.id for hit in collection.search(QUERIES[0], k=10, **MONTH)}
    assert collection.count(**MONTH) == len(collection.store.matching_ids(Filter.of(**MONTH)))


def test_the_least_recently_used_filter_is_forgotten() -> None:
    memory = FilterMemory(remembered=2, uses_before=1)
    filters = [Filter.of(date_from=f"2003-0{month}-01") for month in (1, 2, 3)]
    loads: list[int] = []
    for number, where in enumerate(filters):
        memory.use(where, lambda number=number: loads.append(number) or np.array([number, number + 10]))
    assert memory.get(filters[0]) is None and memory.get(filters[1]) is not None and memory.get(filters[2]) is not None
    assert memory.use(filters[2], lambda: pytest.fail("loaded again")).count == 2
    assert loads == [0, 1, 2]


def test_matching_keys_answer_for_keys_outside_their_range() -> None:
    matching = MatchingKeys(np.array([5, 7, 9], dtype=np.int64))
    assert matching.among([-1, 4, 5, 6, 7, 9, 10, 1_000_000]) == {5, 7, 9}
    np.testing.assert_array_equal(matching.keys(), [5, 7, 9])
    empty = MatchingKeys(np.zeros(0, dtype=np.int64))
    assert empty.count == 0 and empty.among([0, 1]) == set() and len(empty.keys()) == 0
