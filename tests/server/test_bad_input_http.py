"""Bad input over HTTP, tried: generated query strings and JSON bodies get a 200 or a 4xx that says what to fix,
never a 500, and the server's log holds no traceback."""

from __future__ import annotations

import json
import urllib.parse

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from semsearch.server.launch import RunningServer

QUIET = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same requests on every run, seeded from each test's source
    database=None,  # and nothing remembered from earlier runs
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=30)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)


def answered_well(server: RunningServer, path: str, body: str | None = None, headers: dict[str, str] | None = None) -> int:
    answer = server.request(path, body, headers)
    assert answer.status in (200, 404, 405, 413, 415, 422), (path, body, answer.status, answer.body)
    if answer.status != 200:
        assert isinstance(answer.body, dict) and answer.body.get("message") and "\n" not in answer.body["message"], answer.body
    return answer.status


def test_generated_get_requests(server: RunningServer) -> None:
    statuses = []

    @QUIET
    @given(parameters=st.dictionaries(st.sampled_from(["q", "k", "mode", "date_from", "date_to", "x"]), st.text(max_size=40), max_size=4))
    # Whatever is generated, the run holds good requests and ones to refuse.
    @example(parameters={"q": "flood warning"})
    @example(parameters={"q": "rivkin trial", "k": "3", "mode": "hybrid", "date_from": "2003-02-01", "date_to": "2003-12-31"})
    @example(parameters={"q": "flood warning", "k": "many"})
    @example(parameters={"k": "5"})  # no q
    def check(parameters: dict[str, str]) -> None:
        statuses.append(answered_well(server, "/search?" + urllib.parse.urlencode(parameters)))

    check()
    assert 200 in statuses and 422 in statuses
    log = server.log_text()
    assert "Traceback" not in log and "ERROR" not in log


def test_generated_post_bodies(server: RunningServer) -> None:
    statuses = []
    headers = {"Content-Type": "application/json"}

    @QUIET
    @given(
        body=st.one_of(
            st.fixed_dictionaries({"queries": st.lists(st.text(max_size=30), max_size=5)}, optional={"k": JSON_VALUES}).map(json.dumps),
            JSON_VALUES.map(json.dumps),
            st.text(max_size=60),
        )
    )
    @example(body=json.dumps({"queries": ["flood warning"]}))
    @example(body=json.dumps({"queries": ["flood warning", "rivkin trial"], "k": 3, "mode": "keyword"}))
    @example(body=json.dumps({"queries": ["flood warning"], "k": "many"}))
    @example(body=json.dumps({"queries": []}))
    def check(body: str) -> None:
        statuses.append(answered_well(server, "/search", body, headers))

    check()
    assert 200 in statuses and 422 in statuses
    log = server.log_text()
    assert "Traceback" not in log and "ERROR" not in log
