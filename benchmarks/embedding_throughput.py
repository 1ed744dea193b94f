"""Local build throughput, each stage and end to end, for each way of using the cores, side by side in one run.

Each mode builds the same corpus in a fresh process, so its peak memory is its own: the peak
resident memory of the build process (when embedding ends, and at the end) and of the largest
embedding worker. Stage times come from the build's own log records (``semsearch.writing.build``).

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/embedding_throughput.py \\
        /work/cache/headlines-1m.tsv --modes processes,threads

Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

CHILD = r"""
import json, logging, resource, sys, time
from semsearch import Collection

stages = {}

class StageRecorder(logging.Handler):
    def emit(self, record):
        if hasattr(record, "stage"):
            stages[record.stage] = {
                "documents": record.documents,
                "seconds": record.seconds,
                # the peak so far: when embedding ends, the embedding stage's own
                "peak_build_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }

logger = logging.getLogger("semsearch.writing.build")
logger.setLevel(logging.INFO)
logger.addHandler(StageRecorder())
source, path, parallel, limit, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
started = time.perf_counter()
collection = Collection.build(source, path, parallel=parallel, batch_size=batch_size, limit=int(limit) if limit != "all" else None)
seconds = time.perf_counter() - started
print(json.dumps({
    "documents": len(collection),
    "seconds": seconds,
    "stages": stages,
    "peak_build_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "peak_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def run_mode(source: str, parallel: str, limit: str, batch_size: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("SEMSEARCH_BENCH_DIR")) as directory:
        output = subprocess.run(
            [sys.executable, "-c", CHILD, source, os.path.join(directory, "bench.semsearch"), parallel, limit, str(batch_size)],
            check=True, capture_output=True, text=True,
        ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("--modes", default="processes,threads,serial")
    parser.add_argument("--limit", default="all")
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; load average {load:.1f} at start")
    print(f"corpus: {args.source} (limit {args.limit}), batch size {args.batch_size}, backend usearch (default)\n")
    print(
        "| mode | documents | embedding: seconds | embedding: texts/s | indexing: seconds | indexing: texts/s "
        "| peak RSS while embedding: build process / largest worker | whole build: seconds | whole build: texts/s | peak RSS, build process |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in args.modes.split(","):
        result = run_mode(args.source, mode, args.limit, args.batch_size)
        print(f"| {mode} | {result['documents']:,} | {stage_cells(result)} | {result['seconds']:.1f} | {result['documents'] / result['seconds']:,.0f} "
              f"| {result['peak_build_mb']:,.0f} MB |", flush=True)


def stage_cells(result: dict) -> str:
    """Seconds and texts/s of each stage, and the memory while embedding; dashes for a semsearch that
    logs no stages (before 2026-11-24, run with PYTHONPATH at an older checkout to compare)."""
    stages = result["stages"]
    if "embedding" not in stages:
        return f"- | - | - | - | - / {result['peak_worker_mb']:,.0f} MB"
    embedding, indexing = stages["embedding"], stages["indexing"]
    return (
        f"{embedding['seconds']:.1f} | {embedding['documents'] / embedding['seconds']:,.0f} "
        f"| {indexing['seconds']:.1f} | {indexing['documents'] / indexing['seconds']:,.0f} "
        f"| {embedding['peak_build_mb']:,.0f} MB / {result['peak_worker_mb']:,.0f} MB"
    )


if __name__ == "__main__":
    main()
