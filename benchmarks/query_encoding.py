"""Encoding one query with the default encoder: what a search pays before the index is asked anything.

Side by side in one process, query by query in turn (so the ratios hold on a busy machine):
the forward pass with two BLAS threads and no remembered token rows (how a library search encoded
before), with one thread, and with one thread and the rows remembered across calls
(``use_forward.TokenRows``, what a search does now). The queries are sample headlines; the memory
is first filled by 1,000 other headlines, as earlier searches of a session would.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/query_encoding.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import semsearch.encoders.use as use
from semsearch.bench.results import machine
from semsearch.encoders.use import UniversalSentenceEncoder
from semsearch.encoders.use_forward import TokenRows
from semsearch.sources.corpus import Corpus

from hybrid import ROOT, write_section  # noqa: E402  (the sibling script: one way to write BENCHMARKS.md)

START, END = "<!-- query-encoding:begin -->", "<!-- query-encoding:end -->"
SAMPLE = ROOT / "src" / "semsearch" / "data" / "abcnews-sample.csv.gz"
WARM, QUERIES = 1000, 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    arguments = parser.parse_args()
    texts = [document.text for document in Corpus(SAMPLE, limit=WARM + 1000 + QUERIES)]
    warm, queries = texts[:WARM], texts[-QUERIES:]
    names = ["2 BLAS threads, rows not remembered", "1 BLAS thread, rows not remembered", "1 BLAS thread, rows remembered (now)"]
    encoders = {name: UniversalSentenceEncoder(threads=2) for name in names}
    one_thread_texts = use.ONE_THREAD_TEXTS

    def encode(name: str, text: str) -> None:
        # Up to ONE_THREAD_TEXTS texts encode on one thread; 0 puts one query on the encoder's two, as before.
        use.ONE_THREAD_TEXTS = 0 if name.startswith("2") else one_thread_texts
        encoders[name].encode([text])

    for name, encoder in encoders.items():
        encoder.encode(["warm up"])
        if "not remembered" in name:
            forward = encoder._forward  # noqa: SLF001 - the benchmark switches the memory off
            forward.remembered = TokenRows(forward._token_rows, capacity=0)  # noqa: SLF001 - every batch computes its rows
        for text in warm:
            encode(name, text)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for number, query in enumerate(queries):
        for name in names[number % len(names):] + names[: number % len(names)]:
            started = time.perf_counter()
            encode(name, query)
            seconds[name].append(time.perf_counter() - started)
    facts = machine()
    lines = [START, "## Encoding one query (issue 12)", "",
             f"Machine: {facts['cpu']}, {facts['cores']} cores; run {facts['date']}. {QUERIES} sample headlines, one at a time, "
             f"each encoded by the three in turn, after {WARM:,} other headlines filled the memory. "
             "Command: `flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/query_encoding.py`.", "",
             "| encoder | p50 ms | p90 ms | p99 ms |", "| --- | ---: | ---: | ---: |"]
    for name, values in seconds.items():
        p50, p90, p99 = (1000 * float(np.percentile(values, q)) for q in (50, 90, 99))
        lines.append(f"| {name} | {p50:.2f} | {p90:.2f} | {p99:.2f} |")
    lines.append(END)
    section = "\n".join(lines)
    print(section)
    write_section(arguments.output, section, START, END)


if __name__ == "__main__":
    main()
