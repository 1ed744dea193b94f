"""The benchmark behind ``semsearch bench``: every backend and reducer setting measured on the same queries.

Measured the way ann-benchmarks does: a corpus is embedded once and cached, 1,000 of its
documents are held out as queries, the rest are indexed, and each setting is scored by
recall@10 against exact search in the encoder's full space, queries per second (one query
at a time and batched, both on one thread), p50/p99 latency of one query, build time (on
every core), time to open the saved index, size on disk (the index plus the vectors.npy a
collection would keep beside it) and peak memory.

Each setting is built and searched in a fresh process (``python -m semsearch.bench.measure``), so
its peak memory is its own and one library's crash cannot take the others with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from semsearch.bench.embedding_cache import Embeddings, cached_embeddings
from semsearch.bench.grids import Setting
from semsearch.bench.results import earlier_rows, write_results
from semsearch.bench.truth import Split, exact_row, hold_out
from semsearch.encoders import Encoder


def run_benchmark(corpus: Path, encoder: Encoder, grid: list[Setting], *, cache_dir: Path, results_path: Path,
                  queries: int = 1000, limit: int | None = None, build_threads: int | None = None,
                  progress: bool = True, log=print) -> list[dict[str, Any]]:
    """Measure every setting of ``grid`` on ``corpus``; results go to ``results_path`` (.json) and a .csv beside it."""
    embeddings = cached_embeddings(corpus, encoder, cache_dir, limit=limit, progress=progress)
    split = hold_out(embeddings, cache_dir, queries)
    corpus_facts = {"corpus": corpus.name, "encoder": encoder.name, "documents": len(embeddings.ids) - queries, "queries": queries}
    results = [{**corpus_facts, **exact_row(embeddings, split)}] + earlier_rows(results_path, corpus_facts, {setting.label for setting in grid})
    for setting in grid:
        log(f"{setting.label} ...")
        rows = run_in_subprocess(setting, embeddings, split, cache_dir, queries, build_threads)
        for row in rows:
            if "error" in row:
                log(f"  failed: {row['error']}")
                continue
            log(f"  {json.dumps(row['search_params'])}: recall {row['recall']}, {row['qps']} QPS, p99 {row['p99_ms']} ms, "
                f"built in {row['build_seconds']} s, {row['size_bytes'] / 1e6:,.0f} MB")
        results.extend({**corpus_facts, **row} for row in rows)
        write_results(results, results_path)
    return results

def run_in_subprocess(setting: Setting, embeddings: Embeddings, split: Split, cache_dir: Path, queries: int,
                      build_threads: int | None) -> list[dict[str, Any]]:
    job = {
        "setting": asdict(setting), "vectors": str(embeddings.vectors_path), "ids": str(embeddings.vectors_path).replace(".f16.npy", ".ids.npy"),
        "cache_dir": str(cache_dir), "queries": queries, "build_threads": build_threads,
    }
    result = subprocess.run([sys.executable, "-m", "semsearch.bench.measure", json.dumps(job)], capture_output=True, text=True)
    if result.returncode != 0:
        return [{"label": setting.label, "backend": setting.backend, "reduce": setting.reduce or "", "build_params": setting.params,
                 "search_params": {}, "error": (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]}]
    return json.loads(result.stdout)
