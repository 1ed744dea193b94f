"""One setting built, saved, opened and searched, in a process of its own (``python -m semsearch.bench.measure``),
so its peak memory is its own and one library's crash cannot take the others with it."""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import MISSING_ID, VectorIndex
from semsearch.backends import bench_only_class
from semsearch.backends.factory import new_index, open_index
from semsearch.bench.embedding_cache import Embeddings, chunks, read_rows
from semsearch.bench.evaluate import latencies, recall_at_k
from semsearch.bench.grids import Setting
from semsearch.bench.truth import K, Split, hold_out
from semsearch.storage.layout import DOCUMENTS_FILE, VECTORS_FILE, index_entries
from semsearch.storage.vector_file import VectorFileWriter


def measure(setting: Setting, embeddings: Embeddings, split: Split, workspace: Path, build_threads: int | None) -> list[dict[str, Any]]:
    """Build, save, open and search one setting; one result row per point of its sweep."""
    rows, dim = embeddings.shape
    is_query = np.zeros(rows, dtype=bool)
    is_query[split.query_rows] = True
    bench_only = bench_only_class(setting.backend)
    index = new_index(setting.backend, dim, dict(setting.params), setting.reduce) if bench_only is None else bench_only(dim, **setting.params)
    index.threads = build_threads
    # The float16 vectors a collection keeps beside an index that does not, or that re-ranks on them (usearch i8).
    reranks = any(point.get("rerank") for point in setting.sweep)
    vector_file = None if index.keeps_vectors and not reranks else VectorFileWriter(workspace / VECTORS_FILE, dim)
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    indexed = 0
    for start, block in chunks(embeddings.vectors_path, rows):
        keep = ~is_query[start : start + len(block)]
        block_ids = embeddings.ids[start : start + len(block)][keep]
        index.add(block_ids, block[keep])
        if vector_file is not None:
            vector_file.append(block[keep], block_ids)
        indexed += len(block_ids)
    index.save(workspace)
    if vector_file is not None:
        vector_file.close()
    build_seconds, build_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    # What open_index reads of a manifest: every file the workspace holds listed, as a collection's are (and the
    # store a collection would have beside them, which the benchmark does not need).
    files = {name: {} for name in [DOCUMENTS_FILE, *(entry.name for entry in workspace.iterdir())]}
    manifest = {"encoder": {"dim": dim}, **index_entries(index), "count": indexed, "files": files}
    build_params = dict(index.params)
    del index
    def reopen() -> tuple[VectorIndex, float]:
        started = time.perf_counter()
        # A bench-only backend (scann) reopens only the files this process just wrote; collections cannot use it.
        index = open_index(workspace, manifest, mmap=True) if bench_only is None else bench_only.open_own(workspace, dim, build_params)
        return index, time.perf_counter() - started

    # The first open checks every index file whole before the library reads it (backends/checks.py); the check is
    # remembered per file identity, so every later open is the second figure, which is the one the open target means.
    opened, first_open_seconds = reopen()
    del opened
    opened, open_seconds = reopen()
    size_bytes = sum(path.stat().st_size for path in workspace.rglob("*") if path.is_file())
    queries = np.concatenate([read_rows(embeddings.vectors_path, row, row + 1) for row in split.query_rows])
    results = []
    for search_params in setting.sweep:
        results.append({
            "label": setting.label, "backend": setting.backend, "reduce": setting.reduce or "",
            "build_params": build_params, "search_params": search_params, "documents": indexed, "queries": len(queries),
            "build_threads": build_threads or os.cpu_count(), "build_seconds": round(build_seconds, 2),
            "build_cpu_seconds": round(build_cpu_seconds, 2), "load_average": round(load_before, 2),
            "open_seconds": round(open_seconds, 4), "first_open_seconds": round(first_open_seconds, 4), "size_bytes": size_bytes,
            **search_figures(opened, queries, split.truth, search_params),
        })
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    for result in results:
        result["peak_memory_bytes"] = peak
    return results

def search_figures(index: VectorIndex, queries: np.ndarray, truth: np.ndarray, params: dict[str, Any]) -> dict[str, Any]:
    """Recall@10, QPS one at a time and batched, and p50/p99 latency, all on one thread."""
    from threadpoolctl import threadpool_limits

    index.threads = 1
    with threadpool_limits(limits=1):
        index.search(queries[:100], K, **params)  # warm up: page in the memory-mapped index
        found = np.full((len(queries), K), MISSING_ID, dtype=np.int64)

        cpu_seconds = np.empty(len(queries))

        def one(position: int) -> None:
            cpu_started = time.process_time()
            found[position] = index.search(queries[position : position + 1], K, **params)[0][0]
            cpu_seconds[position] = time.process_time() - cpu_started

        seconds = latencies(one, len(queries))
        started = time.perf_counter()
        index.search(queries, K, **params)
        batch_seconds = time.perf_counter() - started
    return {
        "recall": round(recall_at_k(found, truth, K), 4),
        "qps": round(len(queries) / seconds.sum(), 1),
        "batch_qps": round(len(queries) / batch_seconds, 1),
        "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 3),
        "p99_ms": round(float(np.percentile(seconds, 99)) * 1000, 3),
        # CPU time is what the search cost, whatever else ran on the machine meanwhile.
        "cpu_qps": round(len(queries) / max(cpu_seconds.sum(), 1e-9), 1),
        "cpu_p99_ms": round(float(np.percentile(cpu_seconds, 99)) * 1000, 3),
    }

def _worker(job: dict[str, Any]) -> None:
    embeddings = Embeddings(Path(job["vectors"]), np.load(job["ids"], allow_pickle=False))
    split = hold_out(embeddings, Path(job["cache_dir"]), int(job["queries"]))
    workspace = Path(tempfile.mkdtemp(prefix="semsearch-bench-", dir=job["cache_dir"]))
    try:
        rows = measure(Setting(**job["setting"]), embeddings, split, workspace, job["build_threads"])
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
