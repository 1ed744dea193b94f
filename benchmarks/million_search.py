"""Search at a million headlines (issue 12, items 3 and 4): filtered search by date range, and search end to end.

On a built collection of the 1,103,663-headline synthetic corpus (``live_million.py --build-only``
builds one from the bench's cached embeddings), with the default encoder loaded once:

- filtered search: date ranges matching about 0.1 %, 1 %, 10 % and 50 % of the documents, 200
  queries one at a time, all in one range and then each in a range of its own; p50 and p99 of the
  whole ``Collection.search`` call, whether every search had k hits (or every match, when fewer
  match), and recall@10 against the exact top 10 of the documents in the one range;
- unfiltered search from Python: the query's encoding alone, then the whole call (encode, index,
  store), p50 and p99;
- the CLI: ``semsearch search`` as a whole command, the files in the page cache (warm).

``semsearch serve`` under load is ``serve_load.py --collection`` on the same collection.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/million_search.py --collection DIR
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import Collection
from semsearch.bench.results import machine
from semsearch.encoders import get_encoder
from semsearch.search.query import SearchRequest
from semsearch.search.retrieval import rankings

from hybrid import ROOT, write_section  # noqa: E402  (the sibling script: one way to write BENCHMARKS.md)
from live_million import headlines  # noqa: E402

START, END = "<!-- million-search:begin -->", "<!-- million-search:end -->"
FRACTIONS = (0.001, 0.01, 0.1, 0.5)
QUERIES = 200
K = 10


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"p50_ms": 1000 * ordered[len(ordered) // 2], "p99_ms": 1000 * ordered[int(len(ordered) * 0.99) - 1]}


def sorted_dates(collection: Collection) -> list[str]:
    """Every document's date, ascending: the ranges below are cut from it."""
    connection = collection.segments[0].store._connection  # noqa: SLF001 - a benchmark reads the dates directly
    return [row[0] for row in connection.execute("SELECT date FROM documents WHERE date IS NOT NULL ORDER BY date")]


def date_range(dates: list[str], fraction: float, start: float = 0.3) -> tuple[str, str]:
    """A range of dates starting ``start`` of the way into the collection, holding about ``fraction`` of its documents."""
    first_row = int(len(dates) * start)
    return dates[first_row], dates[min(len(dates) - 1, first_row + max(1, int(len(dates) * fraction)) - 1)]


def exact_truth(collection: Collection, request: SearchRequest, query_vectors: np.ndarray) -> list[set[int]]:
    """The keys of each query's exact top k among the documents the request's filter matches."""
    segment = collection.segments[0]
    keys = segment.matching_keys(request.filter)
    best_scores = np.full((len(query_vectors), 0), -np.inf, dtype=np.float32)
    best_keys = np.zeros((len(query_vectors), 0), dtype=np.int64)
    for start in range(0, len(keys), 50_000):
        chunk = keys[start : start + 50_000]
        scores = query_vectors @ np.asarray(segment.rows(chunk), dtype=np.float32).T
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_keys = np.concatenate([best_keys, np.broadcast_to(chunk, scores.shape)], axis=1)
        top = np.argsort(-all_scores, axis=1)[:, :K]
        best_scores, best_keys = np.take_along_axis(all_scores, top, axis=1), np.take_along_axis(all_keys, top, axis=1)
    return [set(row.tolist()) for row in best_keys]


def filtered(collection: Collection, queries: list[str], query_vectors: np.ndarray) -> list[dict[str, Any]]:
    """Per share: every query in one range (remembered after its second use, ``search.filter_memory``), then each
    query in a range of its own, the same share further into the collection (never remembered: every search the first)."""
    dates = sorted_dates(collection)
    rows = []
    for fraction in FRACTIONS:
        first, last = date_range(dates, fraction)
        matching = collection.count(date_from=first, date_to=last)
        collection.search(queries[0], k=K, date_from=first, date_to=last)
        seconds, short = [], 0
        for query in queries:
            started = time.perf_counter()
            hits = collection.search(query, k=K, date_from=first, date_to=last)
            seconds.append(time.perf_counter() - started)
            short += len(hits) < min(K, matching) or any(not first <= hit.date.isoformat() <= last for hit in hits)
        own_ranges = [date_range(dates, fraction, 0.05 + 0.4 * number / len(queries)) for number in range(len(queries))]
        fresh = []
        for query, (own_first, own_last) in zip(queries, own_ranges):
            started = time.perf_counter()
            hits = collection.search(query, k=K, date_from=own_first, date_to=own_last)
            fresh.append(time.perf_counter() - started)
            short += len(hits) < K or any(not own_first <= hit.date.isoformat() <= own_last for hit in hits)
        request = SearchRequest.of(K, date_from=first, date_to=last)
        found = rankings(request, queries, collection.encoder, collection.segments, query_vectors, collection.store.semantic_units(request.filter))
        truth = exact_truth(collection, request, query_vectors)
        recall = statistics.mean(len({key for key, _ in ranking} & wanted) / max(1, len(wanted)) for ranking, wanted in zip(found, truth))
        rows.append({"fraction": fraction, "from": first, "to": last, "matching": matching, "short or outside": short,
                     "recall@10": recall, **percentiles(seconds), "own range": percentiles(fresh)})
        print(rows[-1], flush=True)
    return rows


def end_to_end(collection: Collection, queries: list[str]) -> dict[str, Any]:
    encoder = collection.encoder
    encode, whole = [], []
    for query in queries:
        started = time.perf_counter()
        encoder.encode([query])
        encode.append(time.perf_counter() - started)
    for query in queries:
        started = time.perf_counter()
        collection.search(query, k=K)
        whole.append(time.perf_counter() - started)
    return {"encode": percentiles(encode), "search": percentiles(whole)}


def command_line(path: Path, queries: list[str]) -> dict[str, float]:
    executable = str(Path(sys.executable).with_name("semsearch"))
    seconds = []
    for query in queries[:1] + queries[:5]:  # the first warms the page cache and is not counted
        started = time.perf_counter()
        subprocess.run([executable, "search", str(path), query, "-k", str(K)], check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return {"median_s": statistics.median(seconds[1:]), "max_s": max(seconds[1:])}


def opening(path: Path) -> dict[str, float]:
    """``Collection.open`` in a fresh process: first with an empty cache of checked files (a collection new to this
    machine, as one copied or downloaded: every index file is checked whole), then as after the build, checked before."""
    import os
    import tempfile

    code = ("import sys, time; from semsearch import Collection; started = time.perf_counter(); "
            "Collection.open(sys.argv[1]).close(); print(time.perf_counter() - started)")
    seconds = {}
    with tempfile.TemporaryDirectory() as empty_cache:
        for name, cache in (("first open s", empty_cache), ("later open s", empty_cache)):
            finished = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True,
                                      env={**os.environ, "SEMSEARCH_CACHE_DIR": cache})
            seconds[name] = float(finished.stdout.strip().splitlines()[-1])
    return seconds


def report(results: dict[str, Any]) -> str:
    facts = results["machine"]
    lines = [START, f"## Search at {results['documents']:,} headlines: filtered, and end to end (issue 12)", "",
             f"Machine: {facts['cpu']}, {facts['cores']} cores; run {facts['date']}; collection `{results['collection']}` "
             f"({results['documents']:,} documents, backend {results['backend']} {results['params']}), one segment; the default encoder, "
             f"loaded once; {QUERIES} synthetic headlines as queries, one at a time, k={K}. Command: "
             f"`flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/{facts['command']}`.", "",
             "*One range*: every query searched in the same date range, remembered by then (the count and a warm-up search before the timing are its first two uses, "
             "`search/filter_memory.py`). *A range each*: every query in a range of its own with the same share, "
             "so every search is a filter's first. *Short*: searches of both kinds with fewer than k hits or a hit outside the range.", "",
             "| date range (one range) | documents matching | share | one range: p50 ms | p99 ms | a range each: p50 ms | p99 ms "
             "| searches short | recall@10 in the range |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in results["filtered"]:
        lines.append(f"| {row['from']} to {row['to']} | {row['matching']:,} | {100 * row['matching'] / results['documents']:.2f} % | "
                     f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['own range']['p50_ms']:.2f} | {row['own range']['p99_ms']:.2f} | "
                     f"{row['short or outside']} | {row['recall@10']:.3f} |")
    e2e = results["end to end"]
    lines += ["", "| unfiltered, from Python | p50 ms | p99 ms |", "| --- | ---: | ---: |",
              f"| the query's encoding alone | {e2e['encode']['p50_ms']:.2f} | {e2e['encode']['p99_ms']:.2f} |",
              f"| `Collection.search`: encode, index, store | {e2e['search']['p50_ms']:.2f} | {e2e['search']['p99_ms']:.2f} |", "",
              f"`semsearch search` as a command, warm page cache: median {results['cli']['median_s']:.2f} s, "
              f"max {results['cli']['max_s']:.2f} s (five queries; starting Python and loading the encoder included).", "",
              f"Opening the collection in a fresh process: {results['open']['first open s']:.2f} s the first time on this machine "
              f"(every index file checked whole before usearch maps it; a build does this once for its own collection), "
              f"{results['open']['later open s']:.2f} s after that (the files' identities remembered as checked).", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", type=Path, required=True)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="the file whose section is written")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "million-search.json")
    arguments = parser.parse_args()
    opened = opening(arguments.collection)
    encoder = get_encoder("use-multilingual")
    collection = Collection.open(arguments.collection, encoder=encoder)
    queries = headlines(20_000, seed=12)[-QUERIES:]
    query_vectors = encoder.encode(queries)
    index = collection.segments[0].index
    results: dict[str, Any] = {"machine": machine(), "collection": str(arguments.collection), "documents": collection.count(),
                               "backend": index.name, "params": index.params}
    results["open"] = opened
    results["filtered"] = filtered(collection, queries, query_vectors)
    results["end to end"] = end_to_end(collection, queries)
    collection.close()
    results["cli"] = command_line(arguments.collection, queries)
    arguments.results.write_text(json.dumps(results, indent=2) + "\n")
    write_section(arguments.output, report(results), START, END)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
