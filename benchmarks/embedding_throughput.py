"""Local build throughput, end to end, for each way of using the cores, side by side in one run.

Each mode builds the same corpus in a fresh process, so its peak memory is its own:
the peak resident memory of the build process and of the largest embedding worker.

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
import json, resource, sys, time
from semsearch import Collection
source, path, parallel, limit, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
started = time.perf_counter()
collection = Collection.build(source, path, parallel=parallel, batch_size=batch_size, limit=int(limit) if limit != "all" else None)
seconds = time.perf_counter() - started
print(json.dumps({
    "documents": len(collection),
    "seconds": seconds,
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
    print("| mode | documents | seconds | texts/s end to end | peak RSS, build process | peak RSS, largest worker |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for mode in args.modes.split(","):
        result = run_mode(args.source, mode, args.limit, args.batch_size)
        print(
            f"| {mode} | {result['documents']:,} | {result['seconds']:.1f} | {result['documents'] / result['seconds']:,.0f} "
            f"| {result['peak_build_mb']:,.0f} MB | {result['peak_worker_mb']:,.0f} MB |",
            flush=True,
        )


if __name__ == "__main__":
    main()
