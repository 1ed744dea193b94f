"""Writes over HTTP (issue 13): POST and DELETE /documents on a real `semsearch serve` with a write token, refused
without one (403) or without the right one (401); and updates made elsewhere seen without a request to look."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from semsearch.server.launch import (
    SEMSEARCH,
    RunningServer,
    start_server,
    stop_server,
    wait_for_workers,
)

TOKEN = "write-token-for-tests"
WRITE = {"Authorization": f"Bearer {TOKEN}"}
# Generous: no assertion of speed, only that the change is seen at all (the watch looks four times a second).
DEADLINE = 5.0


def build_tiny(path: Path, encoder, sample_csv: Path) -> Path:  # noqa: ANN001
    from semsearch import Collection

    Collection.build(sample_csv, path, encoder=encoder, limit=20).close()
    return path


@pytest.fixture(scope="module")
def writable(tmp_path_factory: pytest.TempPathFactory, real_encoder, sample_csv: Path) -> Iterator[RunningServer]:
    """20 real headlines served with writes on; the token given by the environment variable, as the README suggests."""
    directory = tmp_path_factory.mktemp("writable")
    path = build_tiny(directory / "tiny.semsearch", real_encoder, sample_csv)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEMSEARCH_WRITE_TOKEN", TOKEN)
        running = start_server(path, directory / "server.log")
    yield running
    stop_server(running)


def top_hit(server: RunningServer, query: str) -> dict:
    answer = server.request("/search?q=" + query.replace(" ", "+") + "&k=1")
    assert answer.status == 200, answer.body
    return answer.body["hits"][0]


def count(server: RunningServer) -> int:
    return server.request("/health").body["documents"]


def quiet_log(server: RunningServer) -> None:
    log = server.log_text()
    assert "Traceback" not in log and "500 Internal Server Error" not in log and "ERROR" not in log


def test_a_posted_document_is_searched_and_a_second_post_replaces_it(writable: RunningServer) -> None:
    before = count(writable)
    document = {"id": 5000, "text": "koalas rescued from bushfire", "date": "2003-02-20", "meta": {"desk": "local", "year": 2003}}
    answer = writable.post_json("/documents", {"documents": [document]}, WRITE)
    assert answer.status == 200, answer.body
    assert answer.body == {"added": 1, "replaced": 0, "removed": 0, "not_found": [], "count": before + 1}
    assert top_hit(writable, "koala rescue")["id"] == 5000  # at once: the write ran on the search thread of this process
    assert writable.request("/documents/5000").body == document
    assert count(writable) == before + 1 and writable.request("/info").body["count"] == before + 1
    again = writable.post_json("/documents", {"documents": [{"id": 5000, "text": "wombats rescued from floods"},
                                                            {"id": 5001, "text": "cricket team wins the final"}]}, WRITE)
    assert again.body == {"added": 1, "replaced": 1, "removed": 0, "not_found": [], "count": before + 2}
    assert writable.request("/documents/5000").body == {"id": 5000, "text": "wombats rescued from floods", "date": None, "meta": {}}
    quiet_log(writable)


def test_deleted_documents_are_gone(writable: RunningServer) -> None:
    writable.post_json("/documents", {"documents": [{"id": 6000, "text": "giant squid found on the beach"}]}, WRITE)
    assert top_hit(writable, "giant squid on a beach")["id"] == 6000
    before = count(writable)
    answer = writable.post_json("/documents", {"ids": [6000, 123456]}, WRITE, method="DELETE")
    assert answer.status == 200, answer.body
    assert answer.body == {"added": 0, "replaced": 0, "removed": 1, "not_found": [123456], "count": before - 1}
    assert writable.request("/documents/6000").status == 404
    assert top_hit(writable, "giant squid on a beach")["id"] != 6000
    assert count(writable) == before - 1
    quiet_log(writable)


@pytest.mark.parametrize("headers, message", [
    ({}, "a write needs the write token"),
    ({"Authorization": "Bearer not-the-token"}, "the write token is wrong"),
    ({"Authorization": TOKEN}, "the write token is wrong"),  # no scheme
    ({"Authorization": f"Basic {TOKEN}"}, "the write token is wrong"),
], ids=["no-token", "wrong-token", "no-scheme", "basic"])
def test_a_write_without_the_token_is_a_401_and_changes_nothing(writable: RunningServer, headers: dict, message: str) -> None:
    before = count(writable)
    for method, body in (("POST", {"documents": [{"id": 7000, "text": "not to be stored"}]}), ("DELETE", {"ids": [0]})):
        answer = writable.post_json("/documents", body, headers, method=method)
        assert answer.status == 401 and message in answer.body["message"], answer.body
        assert answer.headers["www-authenticate"].startswith("Bearer")
    # Refused before the body is read: a broken body is a 401 too, not a 422.
    assert writable.request("/documents", "{broken", {"Content-Type": "application/json", **headers}).status == 401
    assert count(writable) == before and writable.request("/documents/7000").status == 404


def test_writes_are_off_without_a_write_token(server: RunningServer) -> None:
    for method, body in (("POST", {"documents": [{"id": 9000, "text": "not to be stored"}]}), ("DELETE", {"ids": [0]})):
        for headers in ({}, WRITE):
            answer = server.post_json("/documents", body, headers, method=method)
            assert answer.status == 403, answer.body
            assert "writes are off on this server: start it with semsearch serve --write-token TOKEN" in answer.body["message"]
            assert "SEMSEARCH_WRITE_TOKEN" in answer.body["message"]
    assert count(server) == 3000 and server.request("/documents/0").status == 200


def _documents(*documents: dict) -> str:
    return json.dumps({"documents": list(documents)})


BAD_WRITES = [
    pytest.param("POST", "{\"documents\": [", "not valid JSON", id="broken-json"),
    pytest.param("POST", "[]", "Input should be a valid dictionary", id="not-an-object"),
    pytest.param("POST", "{}", "documents: Field required", id="no-documents"),
    pytest.param("POST", _documents(), "documents: List should have at least 1 item", id="empty-list"),
    pytest.param("POST", _documents(*({"id": i, "text": "x"} for i in range(1001))), "documents: List should have at most 1000 items",
                 id="too-many"),
    pytest.param("POST", _documents({"id": 1}), "documents.0.text: Field required", id="no-text"),
    pytest.param("POST", _documents({"id": 1, "text": "   "}), "documents.0.text: the text is blank", id="blank-text"),
    pytest.param("POST", _documents({"id": 1, "text": "x" * 10_001}), "documents.0.text: String should have at most 10000 characters",
                 id="long-text"),
    pytest.param("POST", _documents({"text": "x"}), "documents.0.id: Field required", id="no-id"),
    pytest.param("POST", _documents({"id": 1.5, "text": "x"}), "documents.0.id: an id is an integer", id="float-id"),
    pytest.param("POST", _documents({"id": True, "text": "x"}), "not true or false", id="bool-id"),
    pytest.param("POST", _documents({"id": None, "text": "x"}), "not null", id="null-id"),
    # The collection's own refusals, in its words: ids it cannot hold, an id twice.
    pytest.param("POST", _documents({"id": -1, "text": "x"}), "document id -1 is not an integer from 0 to 9223372036854775807",
                 id="negative-id"),
    pytest.param("POST", _documents({"id": 2**64, "text": "x"}), f"document id {2**64} is not an integer from 0", id="huge-id"),
    pytest.param("POST", _documents({"id": 8, "text": "x"}, {"id": 8, "text": "y"}), "document id 8 appears twice", id="twice"),
    pytest.param("POST", _documents({"id": 1, "text": "x", "date": "20 May 2003"}), "documents.0.date: expected a day as YYYY-MM-DD",
                 id="bad-date"),
    pytest.param("POST", _documents({"id": 1, "text": "x", "date": "2003-02-30"}), "documents.0.date", id="no-such-day"),
    pytest.param("POST", _documents({"id": 1, "text": "x", "meta": [1]}), "documents.0.meta: Input should be a valid dictionary",
                 id="meta-not-object"),
    pytest.param("POST", '{"documents": [{"id": 1, "text": "x", "meta": {"a": NaN}}]}', "field 'a' holds NaN", id="meta-nan"),
    pytest.param("POST", _documents({"id": 1, "text": "x", "title": "y"}), "documents.0.title: Extra inputs are not permitted",
                 id="unknown-field"),
    pytest.param("DELETE", "{}", "ids: Field required", id="no-ids"),
    pytest.param("DELETE", json.dumps({"ids": []}), "ids: List should have at least 1 item", id="no-ids-listed"),
    pytest.param("DELETE", json.dumps({"ids": list(range(10_001))}), "ids: List should have at most 10000 items", id="too-many-ids"),
    pytest.param("DELETE", json.dumps({"ids": 5}), "ids: Input should be a valid list", id="ids-not-list"),
    pytest.param("DELETE", json.dumps({"ids": [1.5]}), "ids.0: an id is an integer", id="float-in-ids"),
    pytest.param("DELETE", json.dumps({"id": [1]}), "id: Extra inputs are not permitted", id="misspelt"),
]


@pytest.mark.parametrize("method, body, message", BAD_WRITES)
def test_a_bad_write_is_a_422_in_one_line_and_changes_nothing(writable: RunningServer, method: str, body: str, message: str) -> None:
    before = count(writable)
    answer = writable.request("/documents", body, {"Content-Type": "application/json", **WRITE}, method=method)
    assert answer.status == 422, answer.body
    assert message in answer.body["message"] and "\n" not in answer.body["message"], answer.body
    assert count(writable) == before
    quiet_log(writable)


def test_a_string_id_is_passed_to_the_collection_which_decides(writable: RunningServer) -> None:
    """Ids may be strings in the model; a collection of integer ids refuses one in its own words (no path, no traceback)."""
    answer = writable.post_json("/documents", {"documents": [{"id": "news-1", "text": "flood warning for the coast"}]}, WRITE)
    if answer.status == 200:  # a collection that takes string ids
        assert answer.body["added"] == 1
    else:
        assert answer.status == 422 and "news-1" in answer.body["message"], answer.body
        assert "/" not in answer.body["message"]
    removed = writable.post_json("/documents", {"ids": ["news-1"]}, WRITE, method="DELETE")
    assert removed.status in (200, 422) and removed.body.get("message", "").count("/") == 0, removed.body
    quiet_log(writable)


def test_an_oversized_write_is_a_413_that_says_to_split_it(writable: RunningServer) -> None:
    """Over a plain socket: the server answers on the declared length and closes, which may cut a client's upload short."""
    address = urllib.parse.urlsplit(writable.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(f"POST /documents HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
                           f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1500000\r\n\r\n".encode())
        response = http.client.HTTPResponse(connection)
        response.begin()
        status, body = response.status, json.loads(response.read())
    assert status == 413 and "the request body is over 1,000,000 bytes; send the documents in several requests" == body["message"]


def wait_for_log(server: RunningServer, text: str, times: int = 1) -> bool:
    """Whether the server's log shows ``text`` (``times`` times) before the deadline; sends no request meanwhile."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if server.log_text().count(text) >= times:
            return True
        time.sleep(0.05)
    return False


def test_an_add_from_another_process_is_counted_with_no_request_to_look(tmp_path: Path, real_encoder, sample_csv: Path) -> None:
    path = build_tiny(tmp_path / "tiny.semsearch", real_encoder, sample_csv)
    running = start_server(path, tmp_path / "server.log")
    try:
        assert count(running) == 20
        corpus = tmp_path / "more.jsonl"
        corpus.write_text(json.dumps({"id": 900, "text": "koalas rescued from bushfire"}) + "\n")
        subprocess.run([*SEMSEARCH, "add", str(path), str(corpus)], check=True, capture_output=True, timeout=300)
        # No request is sent until the server has logged that it serves the update: its watch found it alone.
        assert wait_for_log(running, "serving the updated collection: 21 documents"), running.log_text()
        assert count(running) == 21 and running.request("/info").body["count"] == 21
        assert top_hit(running, "koala rescue")["id"] == 900
        quiet_log(running)
    finally:
        stop_server(running)


def test_a_write_through_one_worker_is_seen_by_the_other(tmp_path: Path, real_encoder, sample_csv: Path) -> None:
    path = build_tiny(tmp_path / "tiny.semsearch", real_encoder, sample_csv)
    running = start_server(path, tmp_path / "server.log", "--workers", "2", "--write-token", TOKEN)
    try:
        wait_for_workers(running, 2)
        answer = running.post_json("/documents", {"documents": [{"id": 800, "text": "koalas rescued from bushfire"}]}, WRITE)
        assert answer.status == 200 and answer.body["count"] == 21, answer.body
        # The worker that wrote serves its own write; the other logs that it picked the update up, with no request to it.
        assert wait_for_log(running, "serving the updated collection: 21 documents"), running.log_text()
        for _ in range(10):  # whichever worker answers
            assert count(running) == 21 and top_hit(running, "koala rescue")["id"] == 800
        removed = running.post_json("/documents", {"ids": [800]}, WRITE, method="DELETE")
        assert removed.status == 200 and removed.body["count"] == 20
        assert wait_for_log(running, "serving the updated collection: 20 documents"), running.log_text()
        for _ in range(10):
            assert count(running) == 20
        quiet_log(running)
    finally:
        stop_server(running)


def test_with_a_read_token_too_the_write_token_reads_and_only_it_writes(fake_encoder, tmp_path: Path, sample_csv: Path) -> None:
    """One bearer token a request: with --token and --write-token, the write token also reads; the read token does not write."""
    from semsearch import Collection
    from semsearch.server.app import create_app
    from semsearch.server.launch import serve_app

    Collection.build(sample_csv, tmp_path / "news.semsearch", encoder=fake_encoder, backend="exact", limit=30).close()
    collection = Collection.open(tmp_path / "news.semsearch", encoder=fake_encoder)
    read = {"Authorization": "Bearer read-token"}
    with serve_app(create_app(collection, close_collection=True, token="read-token", write_token=TOKEN)) as app:
        assert app.request("/search?q=flood&k=1", headers=read).status == 200
        assert app.request("/search?q=flood&k=1", headers=WRITE).status == 200
        assert app.request("/search?q=flood&k=1").status == 401
        body = {"documents": [{"id": 100, "text": "flood warning"}]}
        assert app.post_json("/documents", body).status == 401  # the read token's check, first
        refused = app.post_json("/documents", body, read)
        assert refused.status == 401 and "the write token is wrong" in refused.body["message"]
        assert app.post_json("/documents", body, WRITE).body["added"] == 1
        schema = app.request("/openapi.json", headers=read).body
        for method in ("post", "delete"):
            operation = schema["paths"]["/documents"][method]
            assert operation["security"] == [{"bearer": []}] and {"401", "403", "413", "422"} <= set(operation["responses"])
        assert "security" not in schema["paths"]["/health"]["get"]


def test_the_readme_states_the_write_limits() -> None:
    """README's section on writes gives the limits the server keeps (its examples are run by hand: they need the full sample)."""
    from semsearch.server import writes
    from tests.readme_blocks import README

    section = README.read_text().split("### Writes over HTTP", 1)[1].split("\n## ", 1)[0]
    for limit in (writes.MAX_WRITE_DOCUMENTS, writes.MAX_REMOVE_IDS, writes.MAX_TEXT_CHARS):
        assert f"{limit:,}" in section
    assert "--write-token TOKEN" in section and "SEMSEARCH_WRITE_TOKEN" in section


def test_a_write_token_that_cannot_travel_in_a_header_is_one_line_at_start(small_real_collection) -> None:
    from click.testing import CliRunner

    from semsearch.cli import cli

    result = CliRunner().invoke(cli, ["serve", str(small_real_collection.path), "--write-token", "two words"])
    assert result.exit_code == 1 and "the token must be printable ASCII without spaces" in result.output
    assert "Traceback" not in result.output


def test_searches_go_on_while_writes_come_in(writable: RunningServer) -> None:
    """Writes take turns with searches on the search thread: every search is answered whole while documents come and go."""
    from concurrent.futures import ThreadPoolExecutor

    def search(number: int) -> int:
        return writable.request(f"/search?q=flood+warning+{number}&k=3").status

    with ThreadPoolExecutor(max_workers=6) as pool:
        searches = [pool.submit(search, number) for number in range(60)]
        for round_ in range(5):
            ids = [7100 + 2 * round_, 7101 + 2 * round_]
            added = writable.post_json("/documents", {"documents": [{"id": i, "text": f"storm damage report {i}"} for i in ids]}, WRITE)
            assert added.status == 200 and added.body["added"] == 2, added.body
            removed = writable.post_json("/documents", {"ids": ids[:1]}, WRITE, method="DELETE")
            assert removed.status == 200 and removed.body["removed"] == 1, removed.body
        assert [future.result() for future in searches] == [200] * 60
    quiet_log(writable)
