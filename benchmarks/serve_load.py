"""Load test of `semsearch serve`: start to first answer, then searches per second and latency.

Bounded: a fixed number of requests at a fixed concurrency, to a server this script starts on
127.0.0.1 and stops again. Each configuration runs in the same invocation, so the ratios
between them hold even on a busy machine. Writes its own section of BENCHMARKS.md.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/serve_load.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from semsearch.collection import Collection, resolve_source
from semsearch.sources.corpus import read_corpus
from semsearch.server.launch import RunningServer, sample_collection, start_server, stop_server, wait_for_workers

ROOT = Path(__file__).resolve().parents[1]
SECTION = "serve-load"
CONFIGURATIONS = [  # (label, worker processes, other `semsearch serve` options)
    ("1 worker", 1, ()),
    ("1 worker, no access log", 1, ("--no-access-log",)),
    ("2 workers", 2, ()),
    ("2 workers, no access log", 2, ("--no-access-log",)),
]


@dataclass
class LoadResult:
    label: str
    requests: int
    concurrency: int
    seconds: float
    latencies: np.ndarray
    failures: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000)


def sample_queries(count: int) -> list[str]:
    """Real headlines from the bundled sample, spread through it: short texts as users type them."""
    corpus = read_corpus(resolve_source("abcnews-sample"))
    return [document.text for document in islice(corpus, 0, None, 5)][:count]


async def _client(host: str, port: int, paths: list[str], next_index: list[int], latencies: list[float], failures: list[int]) -> None:
    """One keep-alive connection sending one request at a time, as a browser tab or a program would."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while next_index[0] < len(paths):
            path = paths[next_index[0]]
            next_index[0] += 1
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                failures.append(status)
    finally:
        writer.close()


async def _load(url: str, paths: list[str], concurrency: int) -> tuple[float, list[float], list[int]]:
    address = urllib.parse.urlsplit(url)
    latencies: list[float] = []
    failures: list[int] = []
    next_index = [0]
    started = time.perf_counter()
    await asyncio.gather(*(_client(address.hostname, address.port, paths, next_index, latencies, failures) for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, failures


def search_paths(queries: list[str], requests: int, k: int = 10) -> list[str]:
    return ["/search?" + urllib.parse.urlencode({"q": queries[i % len(queries)], "k": k}) for i in range(requests)]


def run_load(server: RunningServer, label: str, paths: list[str], concurrency: int) -> LoadResult:
    requests = len(paths)
    asyncio.run(_load(server.url, paths[: min(200, requests)], concurrency))  # warm: connections, caches, branch predictors
    seconds, latencies, failures = asyncio.run(_load(server.url, paths, concurrency))
    result = LoadResult(label, requests, concurrency, seconds, np.array(latencies), len(failures))
    print(f"{label}, {concurrency} clients: {result.per_second:,.0f} requests/s, p50 {result.percentile(50):.1f} ms, "
          f"p99 {result.percentile(99):.1f} ms, {result.failures} failures", file=sys.stderr)
    return result


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python {platform.python_version()}"


def report(collection: Path, start_times: list[float], results: list[LoadResult], command: str) -> str:
    with Collection.open(collection, verify=False) as opened:
        facts = opened.info()
    lines = [
        f"## HTTP server: `semsearch serve` under load, {facts['count']:,} headlines",
        "",
        f"Machine: {machine()}. Command: `{command}`.",
        f"Collection: {collection.name}, {facts['count']:,} headlines, {facts['encoder']['name']} encoder, "
        f"{facts['backend']['name']} index. Server and client share the machine: the client is one asyncio process, "
        "one keep-alive connection per concurrent client, one request at a time on each, `GET /search?q=<a headline>&k=10`, "
        "all answered 200 unless the failures column says otherwise. answers/s is searches a second, except in the "
        "`GET /health` row, which shows what the HTTP stack alone can answer.",
        "",
        f"Start to first answer (process start to the first `GET /search` answered, 1 worker, {len(start_times)} starts): "
        + ", ".join(f"{seconds:.2f} s" for seconds in start_times)
        + f"; median {statistics.median(start_times):.2f} s.",
        "",
        "| server | requests | concurrent clients | answers/s | p50 ms | p90 ms | p99 ms | max ms | failures |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result.label} | {result.requests:,} | {result.concurrency} | {result.per_second:,.0f} | {result.percentile(50):.1f} | "
            f"{result.percentile(90):.1f} | {result.percentile(99):.1f} | {result.latencies.max() * 1000:.1f} | {result.failures} |"
        )
    lines += [
        "",
        "Concurrent requests are searched together: while the encoder works on one batch, the requests arriving meanwhile "
        "queue and go as the next batch (semsearch/server/batching.py), which costs the encoder much less per query than one "
        "at a time. Each worker process encodes with one BLAS thread and maps the same index file.",
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, name: str, text: str) -> None:
    """Replace this script's own section of a shared Markdown file, or append it, leaving the rest alone."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text}{end}\n"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in current and end in current:
        before, rest = current.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        current = before + block + ("\n" + after if after else "")
    else:
        current = current.rstrip("\n") + "\n\n" + block
    path.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", type=Path, help="collection to serve [default: sample.semsearch, built if missing]")
    parser.add_argument("--requests", type=int, default=3000, help="requests per configuration")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--starts", type=int, default=3, help="times to measure start to first answer")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="Markdown file whose section this replaces")
    parser.add_argument("--no-write", action="store_true", help="print the section without writing it")
    parser.add_argument("--section", default=SECTION, help=f"the section of --output written [default: {SECTION}; "
                                                            "serve-load-million for the 1.1M collection]")
    arguments = parser.parse_args()
    command = "flock /tmp/semsearch-heavy.lock " + shlex.join(["python", "benchmarks/serve_load.py", *sys.argv[1:]])

    collection = arguments.collection or sample_collection(ROOT / "sample.semsearch")
    queries = sample_queries(4000)
    first_query = "/search?" + urllib.parse.urlencode({"q": queries[0], "k": 10})
    logs = Path(tempfile.mkdtemp(prefix="semsearch-load-"))

    start_times = []
    for attempt in range(arguments.starts):
        server = start_server(collection, logs / f"start-{attempt}.log", ready_path=first_query)
        start_times.append(server.started_in)
        stop_server(server)
        print(f"start to first answer: {server.started_in:.2f} s", file=sys.stderr)

    results = []
    for label, workers, options in CONFIGURATIONS:
        server = start_server(collection, logs / f"{label}.log", "--workers", str(workers), *options, ready_path=first_query)
        try:
            wait_for_workers(server, workers)
            for concurrency in sorted({1, arguments.concurrency}):
                requests = arguments.requests if concurrency > 1 else max(1, arguments.requests // 6)
                results.append(run_load(server, label, search_paths(queries, requests), concurrency))
            if label == CONFIGURATIONS[0][0]:  # the HTTP stack alone, for scale: what a search costs beyond it
                results.append(run_load(server, f"{label}: `GET /health`, no search", ["/health"] * arguments.requests, arguments.concurrency))
        finally:
            stop_server(server)

    section = report(collection, start_times, results, command)
    print(section)
    if not arguments.no_write:
        write_section(arguments.output, arguments.section, section)
        print(f"wrote the {arguments.section} section of {arguments.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
