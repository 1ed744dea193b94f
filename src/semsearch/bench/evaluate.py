"""How good and how fast an index is: recall against exact search, and latency."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from semsearch.backends.base import MISSING_ID


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the true k nearest ids that the index found among its first k, as ann-benchmarks counts it."""
    total = 0.0
    for found_row, truth_row in zip(found[:, :k], truth[:, :k]):
        true_ids = set(truth_row[truth_row != MISSING_ID].tolist())
        if true_ids:
            total += len(true_ids.intersection(found_row.tolist())) / len(true_ids)
    return total / len(found)


def latencies(search_one: Callable[[int], object], count: int) -> np.ndarray:
    """Seconds taken by each of ``count`` calls, one query at a time."""
    times = np.empty(count)
    for position in range(count):
        start = time.perf_counter()
        search_one(position)
        times[position] = time.perf_counter() - start
    return times

