"""SearchRequest: checked once, hashable, and what the CLI, the server and Collection.search pass on."""

from __future__ import annotations

import datetime

import pytest

from semsearch.errors import SemsearchError
from semsearch.filters import FilterError
from semsearch.search.query import MODES, SearchRequest


def test_a_request_carries_its_filter_and_parameters() -> None:
    request = SearchRequest.of(5, mode="hybrid", date_from="2003-01-01", where={"desk": "sport"}, expansion_search=64)
    assert request.k == 5 and request.mode == "hybrid"
    assert request.filter is not None and request.filter.date_from == datetime.date(2003, 1, 1)
    assert request.search_params == {"expansion_search": 64}
    assert SearchRequest.of().filter is None and SearchRequest.of().mode == "semantic"


def test_equal_requests_share_one_search_call() -> None:
    first = SearchRequest.of(10, where={"desk": "sport"}, ef=1, other="x")
    second = SearchRequest.of(10, where={"desk": "sport"}, other="x", ef=1)
    assert first == second and hash(first) == hash(second)
    assert first != SearchRequest.of(11, where={"desk": "sport"}, ef=1, other="x")


@pytest.mark.parametrize("arguments, problem", [
    ({"k": 0}, "k must be at least 1"),
    ({"mode": "fuzzy"}, "no search mode 'fuzzy'"),
    ({"date_from": "2004-01-01", "date_to": "2003-01-01"}, "is after date_to"),
    ({"date_to": "yesterday"}, "is not a date"),
])
def test_a_bad_request_is_refused_before_any_search(arguments: dict, problem: str) -> None:
    with pytest.raises((SemsearchError, FilterError), match=problem):
        SearchRequest.of(**arguments)
    assert set(MODES) == {"semantic", "keyword", "hybrid"}
