"""Held-out queries and their exact top-k neighbours among the other documents: what recall is measured against."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends.base import MISSING_ID
from semsearch.bench.embedding_cache import Embeddings, chunks, read_rows
from semsearch.errors import SemsearchError


K = 10
QUERY_SEED = 20240601
EXACT_LABEL = "exact (ground truth, batched, all cores)"


@dataclass
class Split:
    """Which rows are queries (held out of every index) and their true neighbours among the rest."""

    query_rows: np.ndarray
    truth: np.ndarray
    exact_seconds: float

def hold_out(embeddings: Embeddings, cache_dir: Path, count: int) -> Split:
    """``count`` query rows chosen with a fixed seed, and exact top-10 ids over the other rows, cached."""
    rows = len(embeddings.ids)
    if count >= rows:
        raise SemsearchError(f"cannot hold out {count:,} queries from {rows:,} documents")
    stem = embeddings.vectors_path.name.removesuffix(".f16.npy")
    truth_path = cache_dir / f"{stem}.truth-{count}-{QUERY_SEED}.npz"
    query_rows = np.sort(np.random.default_rng(QUERY_SEED).choice(rows, size=count, replace=False))
    if truth_path.is_file():
        with np.load(truth_path, allow_pickle=False) as saved:
            return Split(query_rows, saved["truth"], float(saved["exact_seconds"]))
    queries = np.concatenate([read_rows(embeddings.vectors_path, row, row + 1) for row in query_rows])
    is_query = np.zeros(rows, dtype=bool)
    is_query[query_rows] = True
    best_ids = np.full((count, 0), MISSING_ID, dtype=np.int64)
    best_scores = np.zeros((count, 0), dtype=np.float32)
    started = time.perf_counter()
    for start, block in chunks(embeddings.vectors_path, rows):
        keep = ~is_query[start : start + len(block)]
        scores = queries @ block[keep].T
        block_ids = embeddings.ids[start : start + len(block)][keep]
        take = min(K, scores.shape[1])
        top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        best_ids = np.concatenate([best_ids, block_ids[top]], axis=1)
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")[:, :K]
        best_ids = np.take_along_axis(best_ids, order, axis=1)
        best_scores = np.take_along_axis(best_scores, order, axis=1)
    exact_seconds = time.perf_counter() - started
    with truth_path.open("wb") as stream:
        np.savez(stream, truth=best_ids, exact_seconds=np.float64(exact_seconds))
    return Split(query_rows, best_ids, exact_seconds)

def exact_row(embeddings: Embeddings, split: Split) -> dict[str, Any]:
    """The ground truth's own cost: exact search, batched over every core, as a row of its own."""
    rows, dim = embeddings.shape
    return {
        "label": EXACT_LABEL, "backend": "exact", "reduce": "", "build_params": {},
        "search_params": {}, "documents": rows - len(split.query_rows), "queries": len(split.query_rows),
        "build_threads": os.cpu_count(), "build_seconds": 0.0, "open_seconds": None, "size_bytes": (rows - len(split.query_rows)) * dim * 2,
        "recall": 1.0, "qps": None, "batch_qps": round(len(split.query_rows) / split.exact_seconds, 1),
        "p50_ms": None, "p99_ms": None, "peak_memory_bytes": None,
    }
