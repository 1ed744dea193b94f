"""How well an encoder finds what a person would want: hand-picked queries, each with the ids of the
headlines it should find (tests/data/queries.jsonl), scored by hit@k and MRR@k.

Recall against exact search (evaluate.py) says how faithful an index is to its encoder; these say
how good the encoder is, which no index can fix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch.errors import SemsearchError


@dataclass(frozen=True)
class RelevanceQuery:
    """A query and the ids of the documents that answer it; ``kind`` is paraphrase, names, spanish, ..."""

    text: str
    wanted: frozenset[int]
    kind: str


def read_queries(path: Path) -> list[RelevanceQuery]:
    """One JSON object a line: {"query": ..., "ids": [...], "kind": ...}."""
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            queries.append(RelevanceQuery(str(record["query"]), frozenset(int(i) for i in record["ids"]), str(record.get("kind", ""))))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise SemsearchError(f"{path}, line {number}: expected {{\"query\": text, \"ids\": [int, ...]}}: {error}") from None
    return queries


def first_wanted_rank(found: Sequence[int], wanted: frozenset[int], k: int) -> int | None:
    """The 1-based rank of the first wanted id among the first k found, or None."""
    for rank, document_id in enumerate(list(found)[:k], start=1):
        if int(document_id) in wanted:
            return rank
    return None


def hit_at_k(found: Sequence[Sequence[int]], wanted: Sequence[frozenset[int]], k: int = 10) -> float:
    """Share of queries with at least one wanted document among the first k."""
    ranks = [first_wanted_rank(row, want, k) for row, want in zip(found, wanted, strict=True)]
    return float(np.mean([rank is not None for rank in ranks])) if ranks else 0.0


def mrr_at_k(found: Sequence[Sequence[int]], wanted: Sequence[frozenset[int]], k: int = 10) -> float:
    """Mean reciprocal rank of the first wanted document, counting 0 when none is among the first k."""
    ranks = [first_wanted_rank(row, want, k) for row, want in zip(found, wanted, strict=True)]
    return float(np.mean([1.0 / rank if rank else 0.0 for rank in ranks])) if ranks else 0.0
