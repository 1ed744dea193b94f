"""Live updates at a million headlines (issue 13): what add, remove, upsert and compact cost on a segmented collection.

Builds a collection of the 1,103,663-headline synthetic corpus once, from the bench's cached
embeddings (``semsearch bench ... --cache-dir``: nothing is embedded twice), with the default
encoder and backend, then on that collection, open and with the encoder loaded:

- library calls, each the median of three: add 1 / 100 / 10,000, remove 1 / 1,000, upsert 100;
- whole commands (``semsearch add`` of 100, ``semsearch remove`` of 1) on it and on the
  21,293-headline sample, side by side;
- search latency (200 queries, one at a time) with 1, 5 and 20 segments (the merge policy's
  limit raised for the 20), against the compacted collection;
- compaction, against the index build from stored vectors the build itself did.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/live_million.py \\
        --corpus /work/big/headlines-1m.tsv --cache-dir /work/big/cache --work /work/big/live
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import Collection, Document, read_corpus
from semsearch.backends import DEFAULT_BACKEND
from semsearch.bench.embedding_cache import cached_embeddings, read_rows
from semsearch.bench.results import machine
from semsearch.encoders import get_encoder
from semsearch.sources.datasets import bundled_path
from semsearch.writing import merging
from semsearch.writing.build import BuildOptions, build_collection

from hybrid import ROOT, write_section  # noqa: E402  (the sibling script: one way to write BENCHMARKS.md)

START, END = "<!-- live-million:begin -->", "<!-- live-million:end -->"
RESULTS = ROOT / "benchmarks" / "results" / "live-million.json"
MAKE_HEADLINES = ROOT.parent / "shared" / "tools" / "make_headlines.py"
SAMPLE_CSV = ROOT.parent / "shared" / "data" / "abcnews-date-text.sample.csv"
RUNS = 3
QUERIES = 200


class CachedSource:
    """The corpus's documents with the vectors the bench cached for them, in order, as a build's source."""

    activity = "storing"
    stats = None

    def __init__(self, corpus: Path, vectors: Path, rows: int) -> None:
        self.corpus, self.vectors, self.rows = corpus, vectors, rows
        self.description = str(corpus)

    def plan(self) -> dict[str, Any]:
        return {"source": str(self.corpus), "vectors": str(self.vectors)}

    def count_rows(self) -> int | None:
        return self.rows

    def batches(self, skip: int) -> Iterator[tuple[list[Document], np.ndarray]]:
        batch: list[Document] = []
        start = skip  # a resumed build's documents so far are stored already
        for number, document in enumerate(read_corpus(self.corpus)):
            if number < skip:
                continue
            batch.append(document)
            if len(batch) == 8192:
                yield batch, read_rows(self.vectors, start, start + len(batch))
                start += len(batch)
                batch = []
        if batch:
            yield batch, read_rows(self.vectors, start, start + len(batch))


def headlines(count: int, seed: int) -> list[str]:
    output = subprocess.run([sys.executable, str(MAKE_HEADLINES), str(SAMPLE_CSV), str(count), "--seed", str(seed)],
                            check=True, capture_output=True, text=True).stdout
    return [line.split("\t", 1)[1] for line in output.splitlines()[1:]]


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def median_of(calls: list[Any]) -> dict[str, float]:
    seconds = [timed(call) for call in calls]
    return {"median": statistics.median(seconds), "max": max(seconds)}


def search_latency(collection: Collection, queries: list[str]) -> dict[str, float]:
    collection.search(queries[0], k=10)
    seconds = sorted(timed(lambda q=query: collection.search(q, k=10)) for query in queries)
    return {"p50_ms": 1000 * seconds[len(seconds) // 2], "p99_ms": 1000 * seconds[int(len(seconds) * 0.99) - 1], "segments": len(collection.segments)}


def command(arguments: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("semsearch")), *arguments], check=True, capture_output=True)
    return time.perf_counter() - started


def commands_on(path: Path, new_texts: list[str], work: Path, first_id: int) -> dict[str, dict[str, float]]:
    """Each update as a whole ``semsearch`` command (Python started, the encoder loaded, the change made), the median
    of three; the merge policy is the shipped one, so a command may also merge segments, as a user's would."""
    timings: dict[str, list[float]] = {}
    next_id = first_id

    def source_of(count: int, name: str, ids: list[int] | None = None) -> Path:
        nonlocal next_id
        if ids is None:
            ids, next_id = list(range(next_id, next_id + count)), next_id + count
        source = work / f"command-{name}.csv"
        source.write_text("id,headline_text\n" + "".join(f"{document_id},{new_texts[(document_id + i) % len(new_texts)].replace(',', ' ')}\n"
                                                         for i, document_id in enumerate(ids)))
        return source

    for run in range(RUNS):
        for count in (1, 100, 10_000):
            timings.setdefault(f"add {count}", []).append(command(["add", str(path), str(source_of(count, f"add-{count}")), "-q"]))
        removable = list(range(next_id - 1_001, next_id))  # documents the add of 10,000 just made
        for count in (1, 1_000):
            chosen, removable = removable[-count:], removable[:-count]
            timings.setdefault(f"remove {count}", []).append(command(["remove", str(path), *[f"--id={i}" for i in chosen]]))
        replaced = list(range(next_id - 5_000, next_id - 4_900))
        timings.setdefault("upsert 100", []).append(command(["add", str(path), str(source_of(100, "upsert", replaced)), "-q"]))
    return {name: {"median": statistics.median(seconds), "max": max(seconds)} for name, seconds in timings.items()}


def compact_command(path: Path) -> float:
    """``semsearch compact`` once: at 1.1M it takes as long as a build, so it is not run three times."""
    return command(["compact", str(path)])


def segment_count(path: Path) -> int:
    return len(json.loads((path / "manifest.json").read_text())["segments"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="the file whose section is written")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--build-only", action="store_true", help="build the collection (and record its time), measure nothing")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, help="the base segment's backend (an update never writes to it)")
    parser.add_argument("--compact", choices=("both", "command", "none"), default="both",
                        help="compact the whole collection as a library call and as a command (each as long as a build), "
                             "as a command only (at the end; then searched again), or not at all")
    parser.add_argument("--report-from", type=Path, nargs="+", help="results files of earlier runs: write their reports, measure nothing")
    arguments = parser.parse_args()
    if arguments.report_from:
        write_section(arguments.output, section([report(json.loads(path.read_text())) for path in arguments.report_from]), START, END)
        return
    arguments.work.mkdir(parents=True, exist_ok=True)
    encoder = get_encoder("use-multilingual")
    embeddings = cached_embeddings(arguments.corpus, encoder, arguments.cache_dir)
    rows = embeddings.shape[0]
    pristine = arguments.work / "pristine.semsearch"
    results: dict[str, Any] = {"machine": machine(), "rows": rows, "backend": arguments.backend}
    if not (pristine / "manifest.json").is_file():
        started = time.perf_counter()
        build_collection(CachedSource(arguments.corpus, embeddings.vectors_path, rows), pristine, encoder,
                         BuildOptions(arguments.backend, None, None, 8192, True, True))  # resumes an interrupted build
        (arguments.work / "build-seconds.json").write_text(json.dumps({"seconds": time.perf_counter() - started}))
    if (arguments.work / "build-seconds.json").is_file():
        results["build from cached vectors s"] = json.loads((arguments.work / "build-seconds.json").read_text())["seconds"]
    if arguments.build_only:
        return
    live = arguments.work / "live.semsearch"
    shutil.rmtree(live, ignore_errors=True)
    shutil.copytree(pristine, live)
    texts = headlines(20_000, seed=13)
    queries = texts[-QUERIES:]
    collection = Collection.open(live, encoder=encoder)
    encoder.encode(["warm up"])
    results["open s"] = timed(lambda: Collection.open(live, encoder=encoder).close())
    results["search, compacted (1 segment)"] = search_latency(collection, queries)
    library: dict[str, dict[str, float]] = {}
    next_id = 10_000_000
    taken = 0

    def new_documents(count: int) -> list[Document]:
        nonlocal next_id, taken
        chosen = [Document(id=next_id + i, text=texts[(taken + i) % 19_000]) for i in range(count)]
        next_id += count
        taken += count
        return chosen

    for size in (1, 100, 10_000):
        batches = [new_documents(size) for _ in range(RUNS)]
        library[f"add {size}"] = median_of([lambda b=b: collection.add(b) for b in batches])
    for size in (1, 1_000):
        batches = [list(range(run * 10_000, run * 10_000 + size)) for run in range(RUNS)]
        library[f"remove {size}"] = median_of([lambda b=b: collection.remove(b) for b in batches])
    replacing = [[Document(id=run * 100_000 + 500 + i, text=texts[i]) for i in range(100)] for run in range(RUNS)]
    library["upsert 100"] = median_of([lambda b=b: collection.upsert(b) for b in replacing])
    results["library"] = library
    results["segments after the library calls"] = len(collection.segments)
    if arguments.compact == "both":
        results["compact s"] = timed(collection.compact)
        results["search, compacted again"] = search_latency(collection, queries)
    for target in (5, 20):
        merging.MAX_SEGMENTS = 100  # so that the segments stay as added, for the measurement
        while len(collection.segments) < target:
            collection.add(new_documents(100))
        results[f"search, {target} segments"] = search_latency(collection, queries)
    collection.close()
    sample = arguments.work / "sample.semsearch"
    if not (sample / "manifest.json").is_file():
        Collection.build(bundled_path("abcnews-sample"), sample, encoder=encoder).close()
    results["commands, 1.1M"] = commands_on(live, texts, arguments.work, 20_000_000)
    results["commands, sample"] = commands_on(sample, texts, arguments.work, 30_000_000)
    if arguments.compact != "none":
        results["segments before the compact command"] = {"1.1M": segment_count(live), "sample": segment_count(sample)}
        results["commands, 1.1M"]["compact"] = {"median": compact_command(live)}
        results["commands, sample"]["compact"] = {"median": compact_command(sample)}
        if arguments.compact == "command":
            with Collection.open(live, encoder=encoder) as compacted:
                results["search, compacted again"] = search_latency(compacted, queries)
    arguments.results.write_text(json.dumps(results, indent=2) + "\n")
    write_section(arguments.output, section([report(results)]), START, END)
    print(json.dumps(results, indent=2))


def report(results: dict[str, Any]) -> str:
    library, machine_facts = results["library"], results["machine"]
    lines = [f"#### {results['rows']:,} headlines, the first segment indexed by {results['backend']}", "",
             f"Machine: {machine_facts.get('cpu', '?')}, {machine_facts.get('cores', '?')} cores; run {machine_facts.get('date', '?')}; "
             "the default encoder; one process, collection open and encoder loaded for the library calls. "
             "Median of three runs (max in brackets). Command, in benchmarks/: "
             f"`flock /tmp/semsearch-heavy.lock ../.venv/bin/python {machine_facts.get('command', 'live_million.py')}`.", "",
             "| library call | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {value['median']:.3f} ({value['max']:.3f}) |" for name, value in library.items()]
    lines += ["", "| command | this collection s | the 21,293-headline sample s | difference s |", "| --- | ---: | ---: | ---: |"]
    commands = {"add 1": "`semsearch add` of 1", "add 100": "`semsearch add` of 100", "add 10000": "`semsearch add` of 10,000",
                "remove 1": "`semsearch remove` of 1", "remove 1000": "`semsearch remove` of 1,000",
                "upsert 100": "`semsearch add` of 100 replacing documents",
                "compact": "`semsearch compact`, once"}
    for name, big in results["commands, 1.1M"].items():
        small = results["commands, sample"][name]["median"]
        lines.append(f"| {commands.get(name, name)} | {big['median']:.2f} | {small:.2f} | {big['median'] - small:+.2f} |")
    if "segments before the compact command" in results:
        before = results["segments before the compact command"]
        lines += ["", f"The compact commands merged {before['1.1M']} segments (1.1M) and {before['sample']} (sample), what the commands above left."]
    lines += ["", "| search (k=10, 200 queries, one at a time) | segments | p50 ms | p99 ms |", "| --- | ---: | ---: | ---: |"]
    for name in ("search, compacted (1 segment)", "search, compacted again", "search, 5 segments", "search, 20 segments"):
        if name not in results:
            continue
        value = results[name]
        lines.append(f"| {name} | {value['segments']} | {value['p50_ms']:.2f} | {value['p99_ms']:.2f} |")
    compaction = (f"{results['compact s']:.0f} s" if "compact s" in results
                  else f"{results['commands, 1.1M']['compact']['median']:.0f} s as a command (once)" if "compact" in results["commands, 1.1M"]
                  else "not measured in this run")
    lines += ["", f"Compaction of the whole collection: {compaction}"
              + (f"; the build from cached vectors (store, index, orphan check): {results['build from cached vectors s']:.0f} s."
                 if "build from cached vectors s" in results else "."), f"Opening: {results['open s']:.3f} s."]
    return "\n".join(lines)


def section(reports: list[str]) -> str:
    """BENCHMARKS.md's section: every run's report, between the markers."""
    return "\n\n".join([START + "\n### Live updates on segmented collections (issue 13)", *reports, END])


if __name__ == "__main__":
    main()
