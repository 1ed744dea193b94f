"""The HTTP API, against a real `semsearch serve` process on 127.0.0.1 and a real collection."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch.cli import cli

from semsearch.server.launch import RunningServer, start_server, stop_server


def search_url(query: str, k: int | str = 10) -> str:
    return "/search?" + urllib.parse.urlencode({"q": query, "k": k})


def assert_same_hits(http_hits: list[dict], library_hits: list) -> None:
    """The server answers what Collection.search answers, in the shape of Hit.to_json."""
    assert [hit["id"] for hit in http_hits] == [hit.id for hit in library_hits]
    for http_hit, hit in zip(http_hits, library_hits):
        expected = hit.to_json()
        assert http_hit.keys() == expected.keys()
        assert (http_hit["text"], http_hit["date"]) == (expected["text"], expected["date"])
        assert http_hit["score"] == pytest.approx(expected["score"], abs=1e-4)


def test_search_answers_as_the_library_does(server: RunningServer, small_real_collection) -> None:
    answer = server.request(search_url("bushfire recovery in canberra", 5))
    assert answer.status == 200
    assert answer.body["query"] == "bushfire recovery in canberra"
    assert answer.body["hits"][0]["text"] == "canberra rebuilds after bushfires"
    scores = [hit["score"] for hit in answer.body["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert_same_hits(answer.body["hits"], small_real_collection.search("bushfire recovery in canberra", k=5))


def test_k_defaults_to_ten(server: RunningServer) -> None:
    assert len(server.request("/search?q=flood").body["hits"]) == 10


def test_post_searches_a_batch_in_order(server: RunningServer, small_real_collection) -> None:
    queries = ["flood warning", "desafíos globales", "cricket world cup"]
    answer = server.post_json("/search", {"queries": queries, "k": 3})
    assert answer.status == 200
    assert [result["query"] for result in answer.body["results"]] == queries
    for result, query in zip(answer.body["results"], queries):
        assert_same_hits(result["hits"], small_real_collection.search(query, k=3))


def test_concurrent_requests_each_get_their_own_hits(server: RunningServer, small_real_collection) -> None:
    """Requests arriving together are batched on the server; each must still get its own query's k hits."""
    texts = [document.text for document in small_real_collection.store.get(range(0, 3000, 75)).values()]
    work = [(text, 1 + index % 4) for index, text in enumerate(texts)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda item: server.request(search_url(*item)), work))
    for (text, k), answer in zip(work, answers):
        assert answer.status == 200
        assert answer.body["query"] == text
        assert len(answer.body["hits"]) == k
        assert answer.body["hits"][0]["text"] == text  # a headline is nearest to itself


@pytest.mark.parametrize("options", [
    {"date_from": "2003-02-21", "date_to": "2003-02-24"},
    {"mode": "keyword"},
    {"mode": "hybrid", "date_to": "2003-02-22"},
], ids=["dates", "keyword", "hybrid-dates"])
def test_modes_and_filters_are_passed_on(server: RunningServer, small_real_collection, options: dict) -> None:
    answer = server.request("/search?" + urllib.parse.urlencode({"q": "bushfire threatens homes", "k": 5, **options}))
    assert answer.status == 200
    assert_same_hits(answer.body["hits"], small_real_collection.search("bushfire threatens homes", k=5, **options))
    for hit in answer.body["hits"]:
        assert options.get("date_from", "0") <= hit["date"] <= options.get("date_to", "9")
    batch = server.post_json("/search", {"queries": ["bushfire threatens homes"], "k": 5, **options})
    assert batch.body["results"][0]["hits"] == answer.body["hits"]


def test_metadata_filters_are_passed_on(meta_server: RunningServer) -> None:
    def desks(hits: list[dict]) -> set[str]:
        return {hit["meta"]["desk"] for hit in hits}

    sport = meta_server.request(search_url("flood", 50) + "&where=desk%3Dsport")
    assert sport.status == 200 and len(sport.body["hits"]) == 20 and desks(sport.body["hits"]) == {"sport"}
    batch = meta_server.post_json("/search", {"queries": ["flood"], "k": 50, "where": {"desk": "sport"}})
    assert batch.body["results"][0]["hits"] == sport.body["hits"]
    # Conditions in Chroma's form, by POST, and as the URL writes them.
    not_sport = meta_server.post_json("/search", {"queries": ["flood"], "k": 50, "where": {"desk": {"$in": ["business", "local"]}, "year": {"$gte": 2004}}})
    hits = not_sport.body["results"][0]["hits"]
    assert len(hits) == 20 and desks(hits) == {"business", "local"} and {hit["meta"]["year"] for hit in hits} == {2004}
    by_url = meta_server.request(search_url("flood", 50) + "&where=" + urllib.parse.quote("desk in (business,local)") + "&where=year%3E%3D2004")
    assert by_url.status == 200 and by_url.body["hits"] == hits
    missing = meta_server.request(search_url("flood") + "&where=section%3Dsport")
    assert missing.status == 422 and "section" in missing.body["message"]


def test_info_gives_the_manifest_facts(server: RunningServer, small_real_collection) -> None:
    answer = server.request("/info")
    assert answer.status == 200
    assert answer.body["count"] == 3000
    assert answer.body["encoder"] == small_real_collection.manifest["encoder"]
    assert answer.body["backend"]["name"] == "usearch"
    assert "path" not in answer.body
    # No path of the server's (issue 14): the corpus it was built from by file name only.
    built_from = Path(small_real_collection.info()["source"])
    assert built_from.is_absolute() and answer.body["source"] == built_from.name == "abcnews-sample.csv.gz"
    shown = json.dumps(answer.body)
    assert str(built_from.parent) not in shown and str(small_real_collection.path.parent) not in shown


def test_info_names_a_model_directory_by_its_name_only() -> None:
    from semsearch.server.app import public_info

    facts = {"path": "/srv/news.semsearch", "source": "/home/someone/corpora/news.csv.gz", "count": 3,
             "encoder": {"name": "tfhub", "argument": "/home/someone/models/use-5/", "version": "x", "dim": 512}}
    assert public_info(facts) == {"name": "news", "source": "news.csv.gz", "count": 3,
                                  "encoder": {"name": "tfhub", "argument": "use-5", "version": "x", "dim": 512}}
    hub_model = {"encoder": {"name": "sentence-transformers", "argument": "sentence-transformers/all-MiniLM-L6-v2"}}
    assert public_info(hub_model) == hub_model  # a hub name is not a path of the server's


def test_health(server: RunningServer) -> None:
    assert server.request("/health").body == {"status": "ok", "documents": 3000}


def test_openapi_docs_describe_the_api(server: RunningServer) -> None:
    docs = server.request("/docs")
    assert docs.status == 200 and "swagger" in docs.body.lower()
    schema = server.request("/openapi.json").body
    assert {"get", "post"} <= set(schema["paths"]["/search"])
    assert {"/info", "/health"} <= set(schema["paths"])


LONG_QUERY = "flood " * 400  # 2,400 characters

BAD_REQUESTS = [
    pytest.param(search_url("flood", 0), None, {}, "k: Input should be greater than or equal to 1", id="k-zero"),
    pytest.param(search_url("flood", 1001), None, {}, "k: Input should be less than or equal to 1000", id="k-too-big"),
    pytest.param(search_url("flood", "ten"), None, {}, "k: Input should be a valid integer", id="k-not-a-number"),
    pytest.param("/search?k=3", None, {}, "q: Field required", id="no-query"),
    pytest.param(search_url(""), None, {}, "q: String should have at least 1 character", id="empty-query"),
    pytest.param(search_url("   "), None, {}, "q: the query is blank", id="blank-query"),
    pytest.param(search_url(LONG_QUERY), None, {}, "q: String should have at most 2000 characters", id="long-query"),
    pytest.param(search_url("flood") + "&mode=fuzzy", None, {}, "mode: Input should be 'semantic', 'keyword' or 'hybrid'", id="bad-mode"),
    pytest.param(search_url("flood") + "&date_from=2003-13-01", None, {}, "date_from: Input should be a valid date", id="bad-date"),
    pytest.param(search_url("flood") + "&date_from=2003-04-01&date_to=2003-03-01", None, {}, "date_from 2003-04-01 is after date_to 2003-03-01", id="empty-range"),
    pytest.param(search_url("flood") + "&where=section", None, {}, "where.0: 'section' is not FIELD=VALUE", id="bad-where"),
    pytest.param("/search", '{"queries": ["flood"], "where": {"a": [1]}}', {"Content-Type": "application/json"}, "where.a", id="where-not-scalar"),
    pytest.param("/search", '{"queries": ["flood", ', {"Content-Type": "application/json"}, "not valid JSON", id="broken-json"),
    # Found by hypothesis: a zero byte second makes Python's json read the bytes as UTF-16, and they are not.
    pytest.param("/search", "0\x0000000", {"Content-Type": "application/json"}, "cannot be read as JSON text", id="not-utf8-json"),
    pytest.param("/search", "queries=flood", {"Content-Type": "application/x-www-form-urlencoded"}, "Content-Type: application/json", id="form-body"),
    pytest.param("/search", '["flood"]', {"Content-Type": "application/json"}, "Input should be a valid dictionary", id="json-list"),
    pytest.param("/search", '{"queries": []}', {"Content-Type": "application/json"}, "queries: List should have at least 1 item", id="no-queries"),
    pytest.param("/search", '{"queries": ["flood", " "]}', {"Content-Type": "application/json"}, "queries.1: the query is blank", id="blank-in-batch"),
    pytest.param("/search", '{"queries": ["flood"], "k": 5000}', {"Content-Type": "application/json"}, "k: Input should be less than or equal to 1000", id="batch-k"),
    pytest.param("/search", '{"queries": "flood"}', {"Content-Type": "application/json"}, "queries: Input should be a valid list", id="queries-not-list"),
    pytest.param("/search", '{"queries": ["flood"], "\\n": 1}', {"Content-Type": "application/json"}, '"\\n": Extra inputs are not permitted', id="odd-field-name"),
    pytest.param("/search", '{"query": ["flood"]}', {"Content-Type": "application/json"}, "query: Extra inputs are not permitted", id="misspelt-field"),
    # Work bounded (issue 14): each of these was a 500 (SQLite's expression depth, its 64-bit integers, a NUL in a JSON path).
    pytest.param(search_url("flood") + "".join(f"&where=f{i}%3Dv" for i in range(1000)), None, {},
                 "where: List should have at most 20 items", id="where-1000-pairs"),
    pytest.param(search_url("flood") + "&where=" + "f" * 101 + "%3D1", None, {}, "String should have at most 100 characters", id="where-long-field"),
    pytest.param(search_url("flood") + "&where=f%3D" + "v" * 1001, None, {}, "where.f: a value has at most 1,000 characters", id="where-long-value"),
    pytest.param(search_url("flood") + "&where=a%00b%3D1", None, {}, 'field name "a\\u0000b": a metadata field name is printable text',
                 id="where-nul-in-field"),
    pytest.param("/search", json.dumps({"queries": ["flood"], "where": {f"f{i}": i for i in range(21)}}), {"Content-Type": "application/json"},
                 "where: Dictionary should have at most 20 items", id="where-21-fields"),
    pytest.param("/search", json.dumps({"queries": ["flood"], "where": {"a": 2**63}}), {"Content-Type": "application/json"},
                 "where.a: a whole number must be from -2^63 to 2^63-1", id="where-2-to-the-63"),
    pytest.param("/search", json.dumps({"queries": ["flood"], "where": {"a": -(2**63) - 1}}), {"Content-Type": "application/json"},
                 "where.a: a whole number must be from -2^63 to 2^63-1", id="where-below-int64"),
    pytest.param("/search", '{"queries": ["flood"], "where": {"a": NaN}}', {"Content-Type": "application/json"},
                 "where.a: a number must be finite, got nan", id="where-nan"),
    pytest.param("/search", '{"queries": ["flood"], "where": {"a": 1e999}}', {"Content-Type": "application/json"},
                 "where.a: a number must be finite, got inf", id="where-infinite"),
    pytest.param("/search", json.dumps({"queries": ["flood"] * 100, "k": 101}), {"Content-Type": "application/json"},
                 "k: 100 queries at k=101 ask for 10,100 hits; a request may ask for at most 10,000 (queries x k)", id="too-many-hits"),
]


@pytest.mark.parametrize("path, body, headers, message", BAD_REQUESTS)
def test_bad_input_is_a_422_that_says_what_to_fix(server: RunningServer, path: str, body: str | None, headers: dict, message: str) -> None:
    answer = server.request(path, body, headers)
    assert answer.status == 422
    assert message in answer.body["message"]
    assert "\n" not in answer.body["message"]
    # ...and the server goes on answering, with nothing logged as a server error.
    assert server.request(search_url("flood warning", 1)).status == 200
    log = server.log_text()
    assert "Traceback" not in log and "ERROR" not in log


def test_the_largest_allowed_requests_are_answered(server: RunningServer, meta_server: RunningServer) -> None:
    """The limits' edges are allowed: 100 queries x k=100, 10 x k=1000, 20 where fields, the extreme 64-bit integers."""
    assert server.post_json("/search", {"queries": ["flood"] * 100, "k": 100}).status == 200
    assert server.post_json("/search", {"queries": ["flood"] * 10, "k": 1000}).status == 200
    where = {f"f{i}": value for i, value in enumerate([2**63 - 1, -(2**63), 1.5, True, None, "v" * 1000] * 3 + [0, "x"])}
    answer = meta_server.post_json("/search", {"queries": ["flood"], "where": where})
    assert answer.status == 200 and answer.body["results"][0]["hits"] == []
    exact = meta_server.post_json("/search", {"queries": ["flood"], "where": {f"f{i}": i for i in range(20)}})
    assert [hit["id"] for hit in exact.body["results"][0]["hits"]] == [59]
    many = "".join(f"&where=f{i}%3D{'v' * 1000}" for i in range(20))
    assert meta_server.request(search_url("flood") + many).status == 200


def test_an_oversized_batch_is_refused(server: RunningServer) -> None:
    answer = server.post_json("/search", {"queries": ["flood"] * 101})
    assert answer.status == 422
    assert "queries: List should have at most 100 items" in answer.body["message"]


def _raw_post(server: RunningServer, headers: str, chunks: list[bytes]) -> tuple[int, str]:
    """POST over a plain socket, so that a server refusing early does not break the client first."""
    address = urllib.parse.urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(f"POST /search HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n{headers}\r\n".encode())
        try:
            for chunk in chunks:
                connection.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking it all, as it should
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, response.read().decode()


def test_an_oversized_body_is_refused_before_it_is_read(server: RunningServer) -> None:
    status, body = _raw_post(server, "Content-Length: 5000000\r\n", [])  # refused on the header alone
    assert status == 413
    assert "the request body is over 1,000,000 bytes" in json.loads(body)["message"]
    assert server.request(search_url("flood warning", 1)).status == 200


def test_an_oversized_chunked_body_is_refused(server: RunningServer) -> None:
    piece = b"flood " * 20_000  # 120 kB a chunk; nine go over the limit, and the client stops there to hear the answer
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(9)]
    status, _ = _raw_post(server, "Transfer-Encoding: chunked\r\n", chunks)
    assert status == 413
    assert server.request(search_url("flood warning", 1)).status == 200
    assert "Traceback" not in server.log_text()


def test_workers_share_the_memory_mapped_index(small_real_collection, tmp_path: Path) -> None:
    """Two worker processes both answer, and each maps index.usearch instead of reading a copy into memory."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc, which only Linux has")
    running = start_server(small_real_collection.path, tmp_path / "server.log", "--workers", "2")
    index_file = str((small_real_collection.path / "index.usearch").resolve())
    try:
        deadline = time.monotonic() + 120
        while len(mapping := _workers_mapping(running.process.pid, index_file)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(mapping) == 2, f"workers mapping {index_file}: {mapping}"
        answers = [running.request(search_url("flood warning", 2)) for _ in range(6)]
        assert all(answer.status == 200 and len(answer.body["hits"]) == 2 for answer in answers)
    finally:
        stop_server(running)


def _workers_mapping(pid: int, path: str) -> list[int]:
    """uvicorn's worker processes under ``pid`` that have ``path`` memory-mapped."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return [child for child in children if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text()
            and path in Path(f"/proc/{child}/maps").read_text()]


def test_an_update_while_serving_is_searched_within_seconds(tiny_collection_path: Path, tmp_path: Path) -> None:
    from semsearch import Collection, Document

    running = start_server(tiny_collection_path, tmp_path / "server.log")
    try:
        assert running.request(search_url("koala rescue", 1)).body["hits"][0]["id"] != 5000
        with Collection.open(tiny_collection_path) as collection:
            collection.add([Document(id=5000, text="koalas rescued from bushfire")])
        deadline = time.monotonic() + 15
        while (top := running.request(search_url("koala rescue", 1)).body["hits"][0])["id"] != 5000 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert top == {"id": 5000, "text": "koalas rescued from bushfire", "date": None, "score": pytest.approx(top["score"])}
        assert running.request("/health").body["documents"] == 21
    finally:
        stop_server(running)


def test_the_server_encodes_with_one_thread(small_real_collection) -> None:
    from semsearch import Collection
    from semsearch.server.app import create_app

    with Collection.open(small_real_collection.path) as collection:
        create_app(collection)
        assert collection.encoder.inner.threads == 1


def test_serve_refuses_a_path_that_is_not_a_collection(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "missing.semsearch")])
    assert result.exit_code == 1
    assert "missing.semsearch" in result.output and "Traceback" not in result.output


def test_serve_on_a_port_in_use_says_so_at_once(small_real_collection) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", str(small_real_collection.path), "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.output


def test_serve_without_the_server_extra_names_it(monkeypatch: pytest.MonkeyPatch, small_real_collection) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # importing it now fails as if absent
    result = CliRunner().invoke(cli, ["serve", str(small_real_collection.path)])
    assert result.exit_code == 1
    assert "pip install 'semsearch[server]'" in result.output


def test_unknown_paths_and_methods_answer_in_the_same_shape(server: RunningServer) -> None:
    missing = server.request("/no-such-page")
    assert missing.status == 404 and missing.body["message"] == "Not Found"
    wrong_method = server.request("/health", "{}", {"Content-Type": "application/json"})
    assert wrong_method.status == 405 and wrong_method.body["message"] == "Method Not Allowed"
