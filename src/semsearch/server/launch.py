"""Run `semsearch serve` as a child process on 127.0.0.1 and talk to it: for the API and page
tests, the load test and the screenshot script, which all need a real server and its real start.
Also how they run the real browser: Debian's Chromium, never one Playwright downloads."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The `semsearch` command, run by the Python running this (whether or not its scripts are on PATH).
SEMSEARCH = [sys.executable, "-c", "from semsearch.cli import main; main()"]


CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (tests may run as root in a container); nothing that phones home.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def sample_collection(path: Path) -> Path:
    """The bundled sample as a collection at ``path`` (what `make demo` builds), built if missing."""
    if not (path / "manifest.json").is_file():
        from semsearch.collection import Collection

        print(f"building {path} from the bundled sample ...", file=sys.stderr)
        Collection.build("abcnews-sample", path).close()
    return path


def free_port() -> int:
    """A port nothing listens on now (another process could take it before the server does)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] | None = None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class Client:
    """Requests to the server at ``url``."""

    url: str

    def request(self, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None, method: str | None = None) -> Answer:
        """GET ``path``, or POST ``body`` (or ``method``); JSON is decoded (strictly: NaN or Infinity is an error), other bodies
        come back as text."""
        data = body.encode() if isinstance(body, str) else body
        method = method or ("POST" if data is not None else "GET")
        request = urllib.request.Request(self.url + path, data=data, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw, answered = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, answered = error.code, error.read(), error.headers
        kind = answered.get_content_type()
        body = json.loads(raw, parse_constant=_no_constant) if kind == "application/json" else raw.decode()
        return Answer(status, body, {name.lower(): value for name, value in answered.items()})

    def post_json(self, path: str, value: Any, headers: dict[str, str] | None = None, method: str = "POST") -> Answer:
        return self.request(path, json.dumps(value), {"Content-Type": "application/json", **(headers or {})}, method)


@dataclass
class RunningServer(Client):
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    started_in: float = 0.0  # seconds from starting the process to its first answer

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(collection_path: Path, log: Path, *extra: str, ready_path: str = "/health", timeout: float = 120.0) -> RunningServer:
    """Start `semsearch serve` on a free port and return once ``ready_path`` answers 200."""
    port = free_port()
    command = [*SEMSEARCH, "serve", str(collection_path), "--host", "127.0.0.1", "--port", str(port), *extra]
    started = time.perf_counter()
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = RunningServer(process, f"http://127.0.0.1:{port}", log)
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"semsearch serve exited with status {process.returncode}:\n{server.log_text()}")
        try:
            if server.request(ready_path).status == 200:
                server.started_in = time.perf_counter() - started
                return server
        except OSError:
            time.sleep(0.02)
    stop_server(server)
    raise RuntimeError(f"semsearch serve did not answer within {timeout} s:\n{server.log_text()}")


def wait_for_workers(server: RunningServer, workers: int, timeout: float = 120.0) -> None:
    """Return once ``workers`` worker processes have warmed up: the first to answer may be alone yet."""
    deadline = time.perf_counter() + timeout
    while server.log_text().count("Application startup complete.") < workers:
        if time.perf_counter() > deadline or server.process.poll() is not None:
            raise RuntimeError(f"{workers} workers did not start:\n{server.log_text()}")
        time.sleep(0.05)


def stop_server(server: RunningServer) -> None:
    """Stop the server as Ctrl-C would, and wait for it to finish."""
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@dataclass
class AppServer(Client):
    """An application served by uvicorn on a thread of this process: for tests whose collection has an
    encoder `semsearch serve` cannot make (the tests' fake one), or that look inside the application."""

    url: str
    app: Any


@contextmanager
def serve_app(app: Any, timeout: float = 60.0) -> Iterator[AppServer]:
    """Serve ``app`` on 127.0.0.1 (a free port) on a background thread until the block ends."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="semsearch-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the application did not start")
        time.sleep(0.01)
    try:
        yield AppServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout)
