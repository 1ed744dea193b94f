"""How good and how fast an index is: recall against exact search, and latency."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch.backends.base import MISSING_ID


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the true k nearest ids that the index found among its first k, as ann-benchmarks counts it."""
    total = 0.0
    for found_row, truth_row in zip(found[:, :k], truth[:, :k]):
        wanted = set(truth_row[truth_row != MISSING_ID].tolist())
        if wanted:
            total += len(wanted.intersection(found_row.tolist())) / len(wanted)
    return total / len(found)


def latencies(search_one: Callable[[int], object], count: int) -> np.ndarray:
    """Seconds taken by each of ``count`` calls, one query at a time."""
    times = np.empty(count)
    for position in range(count):
        start = time.perf_counter()
        search_one(position)
        times[position] = time.perf_counter() - start
    return times


@dataclass(frozen=True)
class LabelledQuery:
    """A query and the ids of the documents a person judged it should find (tests/data/queries.jsonl)."""

    query: str
    ids: tuple[int, ...]
    kind: str = ""


def load_queries(path: str | Path) -> list[LabelledQuery]:
    """One JSON object a line: {"query": ..., "ids": [...], "kind": ...}."""
    queries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            record = json.loads(line)
            queries.append(LabelledQuery(record["query"], tuple(int(i) for i in record["ids"]), record.get("kind", "")))
    return queries


def first_relevant_rank(found: Sequence[int], wanted: Sequence[int], k: int = 10) -> int | None:
    """The 1-based rank of the first wanted id among the first k found, or None."""
    wanted_set = set(wanted)
    for rank, document_id in enumerate(found[:k], start=1):
        if document_id in wanted_set:
            return rank
    return None


def hit_rate_and_mrr(ranks: Sequence[int | None]) -> tuple[float, float]:
    """hit@k (share of queries with a wanted id in the first k) and MRR@k (mean of 1/rank, 0 when missed)."""
    if not ranks:
        return 0.0, 0.0
    return sum(rank is not None for rank in ranks) / len(ranks), sum(1 / rank for rank in ranks if rank) / len(ranks)
