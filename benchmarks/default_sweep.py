"""A usearch graph over the 1.1M cached embeddings (the default's, or another expansion_add or dtype),
swept over expansion_search.

The same 1,000 held-out queries and ground truth as `semsearch bench` (its cache), so the rows
line up with the 1.1M table in BENCHMARKS.md. The index is built once and kept in the workspace.

Run: flock /tmp/semsearch-heavy.lock .venv/bin/python benchmarks/default_sweep.py [--expansion-add 64] [--dtype bf16]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends import backend_class, create_index
from semsearch.bench.embedding_cache import Embeddings, chunks, read_rows
from semsearch.bench.truth import Split, hold_out
from semsearch.bench.evaluate import latencies, recall_at_k

CACHE = Path("/work/cache/embeddings")
STEM = "headlines-1m.use-multilingual.0653e0406c7c"
WORKSPACE = Path("/work/cache/es-sweep")
SWEEP = (64, 96, 128, 160, 192, 256)


def build_index(embeddings: Embeddings, split: Split, params: dict[str, Any], workspace: Path) -> None:
    """Every document but the held-out queries, with the default parameters but ``params``, saved to ``workspace``."""
    rows = len(embeddings.ids)
    is_query = np.zeros(rows, dtype=bool)
    is_query[split.query_rows] = True
    index = create_index("usearch", 512, params)
    started, cpu_started = time.perf_counter(), time.process_time()
    for start, block in chunks(embeddings.vectors_path, rows):
        keep = ~is_query[start : start + len(block)]
        index.add(embeddings.ids[start : start + len(block)][keep], block[keep])
        print(f"added {start + len(block):,}", file=sys.stderr, flush=True)
    print(json.dumps({"build_s": time.perf_counter() - started, "build_cpu_s": time.process_time() - cpu_started}), flush=True)
    workspace.mkdir(parents=True, exist_ok=True)
    index.save(workspace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--expansion-add", type=int, help="build with this expansion_add instead of the default's")
    parser.add_argument("--dtype", help="store vectors as this usearch dtype (bf16, f32, ...) instead of the default's")
    args = parser.parse_args()
    changed = {"expansion_add": args.expansion_add, "dtype": args.dtype}
    params = {name: value for name, value in changed.items() if value}
    suffix = "".join(f"-{name}{value}" for name, value in params.items())
    workspace = WORKSPACE.with_name(WORKSPACE.name + suffix)
    embeddings = Embeddings(CACHE / f"{STEM}.f16.npy", np.load(CACHE / f"{STEM}.ids.npy", allow_pickle=False))
    split = hold_out(embeddings, CACHE, 1000)
    queries = np.concatenate([read_rows(embeddings.vectors_path, row, row + 1) for row in split.query_rows])
    if not (workspace / "index.usearch").exists():
        build_index(embeddings, split, params, workspace)
    index = backend_class("usearch").load(workspace, 512, params, mmap=True)
    for expansion_search in SWEEP:
        found, _ = index.search(queries, 10, expansion_search=expansion_search)
        times = latencies(lambda position: index.search(queries[position : position + 1], 10, expansion_search=expansion_search), len(queries))
        print(json.dumps({
            "expansion_search": expansion_search,
            "recall": round(recall_at_k(found, split.truth, 10), 4),
            "qps": round(len(times) / times.sum()),
            "p50_ms": round(1000 * np.median(times), 3),
            "p99_ms": round(1000 * np.percentile(times, 99), 3),
        }), flush=True)


if __name__ == "__main__":
    main()
