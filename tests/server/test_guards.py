"""Who may ask (issue 14): requests for a Host this server is not are refused (DNS rebinding)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from semsearch.server.guards import host_allowed, served_hosts
from semsearch.server.launch import RunningServer, start_server, stop_server


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
