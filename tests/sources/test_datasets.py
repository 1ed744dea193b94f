"""The bundled sample, and the download against a real HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch.cli import cli
from semsearch.sources.datasets import DATASETS, bundled_path, download
from semsearch.errors import SemsearchError

BODY = ("publish_date\theadline_text\n" + "".join(f'2003021{i % 10}\t"headline number {i}"\n' for i in range(500))).encode()
SMALL_ABC = replace(DATASETS["abcnews"], min_rows=500, min_bytes=len(BODY) - 10)


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves BODY at any path, honouring "Range: bytes=N-" as Dataverse does."""

    ranges_seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        requested = self.headers.get("Range")
        RangeHandler.ranges_seen.append(requested or "")
        start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1)) if requested else 0
        part = BODY[start:]
        self.send_response(206 if requested else 200)
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.ranges_seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/datafile"
    httpd.shutdown()


def test_bundled_sample_is_in_the_package() -> None:
    path = bundled_path("abcnews-sample")
    assert path.is_file() and path.name.endswith(".csv.gz")


def test_download_checks_and_places_the_file(server: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    path = download("abcnews", tmp_path / "abc.tsv", url=server, dataset=SMALL_ABC, progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == BODY
    assert seen[-1] == (len(BODY), len(BODY))
    assert not (tmp_path / "abc.tsv.part").exists()


def test_download_resumes_a_partial_file(server: str, tmp_path: Path) -> None:
    (tmp_path / "abc.tsv.part").write_bytes(BODY[:1000])
    path = download("abcnews", tmp_path / "abc.tsv", url=server, dataset=SMALL_ABC)
    assert RangeHandler.ranges_seen == ["bytes=1000-"]
    assert path.read_bytes() == BODY


def test_download_refuses_what_does_not_look_like_the_data_set(server: str, tmp_path: Path) -> None:
    too_many = replace(SMALL_ABC, min_rows=1_000_000, min_bytes=0)
    with pytest.raises(SemsearchError, match=r"500 rows, expected at least 1,000,000"):
        download("abcnews", tmp_path / "abc.tsv", url=server, dataset=too_many)
    assert not (tmp_path / "abc.tsv").exists()
    wrong_header = replace(SMALL_ABC, header=("date", "text"))
    with pytest.raises(SemsearchError, match="header is"):
        download("abcnews", tmp_path / "abc.tsv", url=server, dataset=wrong_header)


def test_download_unreachable_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["download", "abcnews", str(tmp_path / "x.tsv"), "--url", "http://127.0.0.1:9/nothing"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: download of http://127.0.0.1:9/nothing failed")
    assert "Traceback" not in result.output


def test_datasets_command_lists_bundled_and_downloadable() -> None:
    result = CliRunner().invoke(cli, ["datasets"])
    assert result.exit_code == 0
    assert re.search(r"abcnews-sample\s+bundled", result.output)
    assert re.search(r"abcnews\s+download", result.output)
