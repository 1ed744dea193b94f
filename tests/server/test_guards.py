"""Who may ask (issue 14): requests for a Host this server is not are refused (DNS rebinding); with a token, only those that carry it."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch.server.guards import host_allowed, served_hosts
from semsearch.server.launch import RunningServer, start_server, stop_server, wait_for_workers


def port_of(server: RunningServer) -> int:
    return urllib.parse.urlsplit(server.url).port


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "[::1]:{port}"])
def test_the_servers_own_names_are_answered(server: RunningServer, host: str) -> None:
    answer = server.request("/search?q=flood&k=1", headers={"Host": host.format(port=port_of(server))})
    assert answer.status == 200 and len(answer.body["hits"]) == 1


@pytest.mark.parametrize("host", ["rebound.example:{port}", "rebound.example", "127.0.0.1:1{port}", "localhost", "127.0.0.1.rebound.example:{port}"])
def test_a_forged_host_is_refused(server: RunningServer, host: str) -> None:
    port = port_of(server)
    for path in ("/search?q=flood&k=1", "/info", "/health", "/", "/static/search.js"):
        answer = server.request(path, headers={"Host": host.format(port=port)})
        assert answer.status == 421, (path, answer.status)
        assert answer.body["message"].startswith("this server does not answer for Host")
        assert f"open it as http://127.0.0.1:{port}/" in answer.body["message"] and "--allow-host" in answer.body["message"]
        assert "\n" not in answer.body["message"]
    post = server.post_json("/search", {"queries": ["flood"]}, headers={"Host": host.format(port=port)})
    assert post.status == 421


@pytest.fixture(scope="module")
def allowing_server(small_real_collection, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(small_real_collection.path, tmp_path_factory.mktemp("allowing") / "server.log",
                           "--allow-host", "search.example.org", "--allow-host", "Other.Example:8443")
    yield running
    stop_server(running)


@pytest.mark.parametrize("host, status", [
    ("search.example.org", 200), ("search.example.org:443", 200), ("SEARCH.example.org:8000", 200),
    ("other.example:8443", 200), ("other.example", 421), ("other.example:443", 421),
    ("example.org", 421), ("evil.search.example.org", 421), ("localhost:{port}", 200),
])
def test_allow_host_names_more_hosts(allowing_server: RunningServer, host: str, status: int) -> None:
    answer = allowing_server.request("/search?q=flood&k=1", headers={"Host": host.format(port=port_of(allowing_server))})
    assert answer.status == status


def test_allow_host_star_answers_any_host(small_real_collection, tmp_path: Path) -> None:
    running = start_server(small_real_collection.path, tmp_path / "server.log", "--allow-host", "*")
    try:
        assert running.request("/search?q=flood&k=1", headers={"Host": "anything.example:1234"}).status == 200
    finally:
        stop_server(running)


def test_served_hosts() -> None:
    assert served_hosts("127.0.0.1", 8000) == ["127.0.0.1:8000", "localhost:8000", "[::1]:8000"]
    assert served_hosts("0.0.0.0", 80, ["Search.Example"]) == [
        "127.0.0.1:80", "127.0.0.1", "localhost:80", "localhost", "[::1]:80", "[::1]", "0.0.0.0:80", "0.0.0.0", "search.example"]
    assert served_hosts("::1", 8000) == ["127.0.0.1:8000", "localhost:8000", "[::1]:8000"]
    assert "[fe80::1]:8000" in served_hosts("fe80::1", 8000)
    assert "myhost.lan:8000" in served_hosts("myhost.lan", 8000)


def test_host_allowed() -> None:
    allowed = served_hosts("127.0.0.1", 8000, ["search.example.org", "other.example:8443"])
    assert host_allowed("localhost:8000", allowed) and host_allowed("[::1]:8000", allowed)
    assert not host_allowed("localhost:8001", allowed) and not host_allowed("[::1]", allowed)
    assert host_allowed("search.example.org:1", allowed) and not host_allowed("other.example:1", allowed)
    assert not host_allowed("", allowed) and not host_allowed("127.0.0.1:8000@evil", allowed)
    assert host_allowed("evil.example", ["*"])


# -- the token (semsearch serve --token, or SEMSEARCH_TOKEN) --

TOKEN = "s3cret-Token_for.tests~"


@pytest.fixture(scope="module")
def token_server(small_real_collection, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server given its token through the environment variable."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEMSEARCH_TOKEN", TOKEN)
        running = start_server(small_real_collection.path, tmp_path_factory.mktemp("token") / "server.log")
    yield running
    stop_server(running)


BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("path", ["/search?q=flood&k=1", "/info", "/no-such-page"])
def test_without_the_token_the_api_is_refused(token_server: RunningServer, path: str) -> None:
    for headers, says in [({}, "this server needs a token"), ({"Authorization": "Bearer wrong"}, "the token is wrong"),
                          ({"Authorization": TOKEN}, "the token is wrong"), ({"Authorization": f"Basic {TOKEN}"}, "the token is wrong"),
                          ({"Authorization": f"Bearer {TOKEN}x"}, "the token is wrong")]:
        answer = token_server.request(path, headers=headers)
        assert answer.status == 401, (path, headers)
        assert answer.body["message"].startswith(says) and "\n" not in answer.body["message"]
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert token_server.post_json("/search", {"queries": ["flood"]}).status == 401


def test_with_the_token_the_api_answers(token_server: RunningServer) -> None:
    answer = token_server.request("/search?q=flood&k=2", headers=BEARER)
    assert answer.status == 200 and len(answer.body["hits"]) == 2
    assert token_server.request("/search?q=flood&k=2", headers={"Authorization": f"bearer  {TOKEN}"}).status == 200
    assert token_server.post_json("/search", {"queries": ["flood"], "k": 2}, headers=BEARER).status == 200
    assert token_server.request("/info", headers=BEARER).body["count"] == 3000
    assert token_server.request("/search?k=2", headers=BEARER).status == 422  # past the token, the usual checks


def test_health_the_page_and_the_docs_need_no_token(token_server: RunningServer) -> None:
    assert token_server.request("/health").body == {"status": "ok", "documents": 3000}
    for path in ["/", "/?token=anything", "/static/search.js", "/static/style.css", "/docs", "/docs-assets/swagger-ui.css"]:
        assert token_server.request(path).status == 200, path
    schema = token_server.request("/openapi.json").body
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["paths"]["/search"]["get"]["security"] == [{"bearer": []}] and "401" in schema["paths"]["/search"]["post"]["responses"]
    assert "security" not in schema["paths"]["/health"]["get"]


def test_the_token_in_the_pages_address_is_not_logged(token_server: RunningServer) -> None:
    assert token_server.request(f"/?token={TOKEN}&q=flood").status == 200
    deadline = time.monotonic() + 10
    while "GET /?token=" not in token_server.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = token_server.log_text()
    assert "GET /?token=REDACTED&q=flood" in log and TOKEN not in log


def test_workers_are_given_the_token(small_real_collection, tmp_path: Path) -> None:
    running = start_server(small_real_collection.path, tmp_path / "server.log", "--workers", "2", "--token", TOKEN)
    try:
        wait_for_workers(running, 2)
        for _ in range(6):  # both workers, whichever answers
            assert running.request("/search?q=flood&k=1").status == 401
            assert running.request("/search?q=flood&k=1", headers=BEARER).status == 200
    finally:
        stop_server(running)


def serve_without_listening(monkeypatch: pytest.MonkeyPatch, *arguments: str) -> tuple[int, str, dict]:
    """`semsearch serve ...` up to the point where uvicorn would listen, and what it would have been given."""
    import uvicorn

    from semsearch.cli import cli

    given: dict = {}
    monkeypatch.setattr("semsearch.server.check_can_listen", lambda host, port: None)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: given.update(app=app, **options))
    result = CliRunner().invoke(cli, ["serve", *arguments])
    return result.exit_code, result.stderr, given


def test_listening_beyond_this_machine_without_a_token_is_warned_of(monkeypatch: pytest.MonkeyPatch, small_real_collection) -> None:
    monkeypatch.delenv("SEMSEARCH_TOKEN", raising=False)
    path = str(small_real_collection.path)
    status, stderr, given = serve_without_listening(monkeypatch, path, "--host", "0.0.0.0")
    assert status == 0 and given["host"] == "0.0.0.0"
    [warning] = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert "without a token" in warning and "--token or SEMSEARCH_TOKEN" in warning
    for quiet in ([path, "--host", "0.0.0.0", "--token", TOKEN], [path], [path, "--host", "::1"]):
        status, stderr, _ = serve_without_listening(monkeypatch, *quiet)
        assert status == 0 and "warning" not in stderr, quiet


def test_a_token_that_cannot_be_sent_is_refused_at_once(monkeypatch: pytest.MonkeyPatch, small_real_collection) -> None:
    status, stderr, given = serve_without_listening(monkeypatch, str(small_real_collection.path), "--token", "two words")
    assert status == 1 and "the token must be printable ASCII without spaces" in stderr and not given
