"""The Beam DirectRunner beside the local build, on the same corpus, side by side in one run.

    flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/beam_throughput.py \\
        /work/cache/headlines-1m.tsv --limit 100000

Steps, each a fresh `semsearch` process: the local build (embedding and indexing), beam-embed
on the DirectRunner with one worker process per CPU (embedding and writing Parquet), and
build --from-embeddings from its output (indexing only). Peak RSS is the largest single
process of the step (the build process or a worker). Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

# Runs one command and reports its wall time and the peak RSS of its largest process.
MEASURE = r"""
import json, resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(json.dumps({"seconds": time.perf_counter() - started, "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measure(command: list[str]) -> dict[str, float]:
    output = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("--limit", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--steps", default="local,beam,from-embeddings", help="which steps to run, of local, beam, from-embeddings")
    args = parser.parse_args()
    semsearch = str(Path(sys.executable).with_name("semsearch"))
    workers = len(os.sched_getaffinity(0))
    common = ["--limit", str(args.limit), "--batch-size", str(args.batch_size)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f} at start")
    print(f"corpus: {args.source}, first {args.limit:,} documents, batch size {args.batch_size}\n")
    print("| step | what it does | seconds | texts/s | peak RSS, largest process |")
    print("| --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(dir=os.environ.get("SEMSEARCH_BENCH_DIR")) as directory:
        steps = {
            "local": ("local build, processes", "embed + index + store",
             [semsearch, "build", args.source, "-o", f"{directory}/local.semsearch", "-q", *common]),
            "beam": (f"beam-embed, DirectRunner, {workers} processes", "read + embed + write Parquet",
             [semsearch, "beam-embed", args.source, f"{directory}/emb/news", *common,
              f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]),
            "from-embeddings": ("build --from-embeddings", "read Parquet + index + store",
             [semsearch, "build", "--from-embeddings", f"{directory}/emb/news*.parquet", "-o", f"{directory}/beam.semsearch", "-q",
              "--batch-size", str(args.batch_size)]),
        }
        for name, what, command in (steps[step] for step in args.steps.split(",")):
            result = measure(command)
            print(f"| {name} | {what} | {result['seconds']:.1f} | {args.limit / result['seconds']:,.0f} | {result['peak_mb']:,.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
