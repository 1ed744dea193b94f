"""How a search finds its ids: semantic (the vector index, with filters), keyword (FTS5 BM25), and hybrid.

Filtered semantic search must return k hits whenever k documents match. usearch's Python
API has no predicate search, so either the matching documents are scored exactly, or the
index is asked for k * 2 / share candidates, four times more each round until k of them
match, ending in an exact scan if it never finds them. The count that decides stops at
``COUNT_LIMIT`` (past it, the share is estimated from a fixed sample of keys), and an exact
scan is chosen while the matches number at most ``SCAN_RATIO`` times the candidates: a
matching document costs about that much less to score exactly (its float16 vector gathered
from the mapped index and scored with usearch's kernels) than a candidate costs the graph.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from semsearch.backends import MISSING_ID, VectorIndex
from semsearch.backends.exact import best_rows, top_k
from semsearch.backends.reachability import Orphans
from semsearch.encoders.base import Encoder
from semsearch.errors import SemsearchError
from semsearch.filters import Filter
from semsearch.search.query import MODES, SearchRequest
from semsearch.search.segment_view import OpenSegment

__all__ = ["MODES", "Ranking", "fuse", "keyword_rankings", "merged", "rankings", "semantic_rankings"]

# Matching documents always scored exactly rather than through the index.
EXACT_SUBSET_LIMIT = 2_000
# Documents a filter's count counts up to; past it, its share is estimated from SHARE_SAMPLES keys
# (counting the 550,000 documents of a 50 % date range took 61 ms at 1.1M; counting to 20,000, 2 ms).
COUNT_LIMIT = 20_000
SHARE_SAMPLES = 1_024
# An exact scan of the matching documents is chosen while they are at most this many times the candidates the
# index would be asked for: scoring a document exactly costs about 1/SCAN_RATIO of a candidate of the graph search.
SCAN_RATIO = 8
# Vectors fetched and scored at once in an exact scan.
SCAN_CHUNK = 50_000
# How much the candidate set grows each time too few candidates match.
WIDEN_FACTOR = 4
# Reciprocal rank fusion: score = sum over rankings of 1 / (RRF_CONSTANT + rank); 60 as in Cormack et al. (2009).
RRF_CONSTANT = 60
# Each ranking hybrid fuses is this long at least: a document ranked low in one and high in the other still counts.
FUSION_DEPTH = 100

Ranking = list[tuple[int, float]]
VectorLookup = Callable[[np.ndarray], np.ndarray]


class SegmentStore(Protocol):
    """What a search asks of a segment's documents (``segment_view.OpenSegment``): its deletions already left out."""

    has_deletions: bool

    def count_matching(self, where: Filter | None, limit: int | None = None) -> int: ...
    def sampled_share(self, where: Filter | None, samples: int) -> float: ...
    def matching_keys(self, where: Filter | None) -> np.ndarray: ...
    def filter_keys(self, keys: Iterable[int], where: Filter | None) -> set[int]: ...
    def keyword_search(self, text: str, k: int, where: Filter | None) -> list[tuple[int, float]]: ...


def rankings(request: SearchRequest, queries: list[str], encoder: Encoder, segments: Sequence[OpenSegment],
             query_vectors: np.ndarray | None = None, semantic_units: Sequence[Any] | None = None) -> list[Ranking]:
    """Per query, up to ``request.k`` (key, score) pairs, best first, by the request's mode and filter, from
    every segment, after the first ``request.offset`` and at least ``request.min_score``. ``semantic_units``:
    what the semantic search searches, if not ``segments`` one by one (``SegmentedDocuments.semantic_units``)."""
    found = _rankings(request, queries, encoder, segments, query_vectors, semantic_units or segments)
    start, stop = request.offset, request.offset + request.k
    if request.min_score is None:
        return [ranking[start:stop] for ranking in found]
    return [[(i, score) for i, score in ranking[start:stop] if score >= request.min_score] for ranking in found]


def _rankings(request: SearchRequest, queries: list[str], encoder: Encoder, segments: Sequence[OpenSegment],
              query_vectors: np.ndarray | None, units: Sequence[Any]) -> list[Ranking]:
    k, mode, where = request.k + request.offset, request.mode, request.filter
    depth = k if mode != "hybrid" else max(k, FUSION_DEPTH)
    semantic: list[Ranking] = []
    if mode != "keyword":
        try:
            vectors = encoder.encode(queries) if query_vectors is None else query_vectors
            # A small segment is searched exactly, whatever the backend: the backend's search parameters are not its.
            semantic = merged([semantic_rankings(unit.index, unit, unit.rows, vectors, depth, where,
                                                 {} if unit.is_small else request.search_params, orphans=unit.orphans)
                               for unit in units], depth)
        except ValueError as error:
            raise SemsearchError(str(error)) from None
    if mode == "semantic":
        return semantic
    keyword = merged([keyword_rankings(segment, queries, depth, where) for segment in segments], depth)
    if mode == "keyword":
        return keyword
    return [fuse([by_meaning, by_words], k) for by_meaning, by_words in zip(semantic, keyword)]


def merged(per_segment: list[list[Ranking]], k: int) -> list[Ranking]:
    """Each query's k best over every segment's ranking of it. The k best of a union are among the k best of
    each part, so k from each segment are enough. (Keyword scores are BM25 with each segment's own statistics:
    after compaction, one segment, they are the collection's.)"""
    if len(per_segment) == 1:
        return per_segment[0]
    return [sorted((pair for ranking in rankings_of_query for pair in ranking), key=lambda pair: (-pair[1], pair[0]))[:k]
            for rankings_of_query in zip(*per_segment)]


def semantic_rankings(
    index: VectorIndex,
    store: SegmentStore,
    vectors_of: VectorLookup,
    queries: np.ndarray,
    k: int,
    where: Filter | None,
    search_params: dict[str, Any],
    exact_subset_limit: int | None = None,
    orphans: Orphans | None = None,
) -> list[Ranking]:
    """Per query, up to k (key, cosine) pairs, best first, among the live documents ``where`` matches.

    A segment's deleted documents are filtered out as ``where`` filters: the index is asked for
    more candidates than k until k live ones are among them. ``orphans``, the documents the index cannot find (``backends.reachability``), are scored
    exactly and merged into the index's results.
    """
    exact_subset_limit = EXACT_SUBSET_LIMIT if exact_subset_limit is None else exact_subset_limit
    orphans = orphans if orphans is not None and len(orphans) else None
    if where is None and not store.has_deletions:
        ids, scores = index.search(queries, k, **search_params)
        return _rows(*(orphans.merge(queries, ids, scores) if orphans else (ids, scores)))
    matching = store.count_matching(where, COUNT_LIMIT)
    if matching == 0:
        return [[] for _ in queries]
    total = max(len(index), 1)
    counted = matching < COUNT_LIMIT
    # Past the limit, the share a fixed sample of keys matches; never fewer than the limit the count reached.
    estimated = matching if counted else max(COUNT_LIMIT, store.sampled_share(where, SHARE_SAMPLES) * total)
    candidates = min(total, k * math.ceil(2 * total / estimated))
    if counted and (matching <= exact_subset_limit or matching <= SCAN_RATIO * candidates):
        return _exact_scan(store.matching_keys(where), vectors_of, queries, k)
    results: list[Ranking | None] = [None] * len(queries)
    pending = list(range(len(queries)))
    while pending and candidates < total:
        ids, scores = index.search(queries[pending], candidates, **search_params)
        if orphans:  # merged unfiltered: the candidates' filter below takes out those it does not match
            ids, scores = orphans.merge(queries[pending], ids, scores)
        allowed = store.filter_keys({int(i) for i in np.unique(ids) if i != MISSING_ID}, where)
        still_pending = []
        for position, row_ids, row_scores in zip(pending, ids, scores):
            kept = [(int(i), float(s)) for i, s in zip(row_ids, row_scores) if int(i) in allowed]
            if len(kept) >= k:
                results[position] = kept[:k]
            else:
                still_pending.append(position)
        pending = still_pending
        candidates = min(total, candidates * WIDEN_FACTOR)
    if pending:
        scanned = _exact_scan(store.matching_keys(where), vectors_of, queries[pending], k)
        for position, ranking in zip(pending, scanned):
            results[position] = ranking
    return [ranking or [] for ranking in results]


def _rows(ids: np.ndarray, scores: np.ndarray) -> list[Ranking]:
    return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i != MISSING_ID] for row_ids, row_scores in zip(ids, scores)]


def _exact_scan(ids: np.ndarray, vectors_of: VectorLookup, queries: np.ndarray, k: int) -> list[Ranking]:
    """Score every one of ``ids`` against every query, a chunk of vectors at a time; keep the k best."""
    best_ids = np.full((len(queries), 0), MISSING_ID, dtype=np.int64)
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    for start in range(0, len(ids), SCAN_CHUNK):
        chunk = ids[start : start + SCAN_CHUNK]
        positions, scores = best_rows(queries, vectors_of(chunk), k)
        chunk_ids = np.where(positions != MISSING_ID, chunk[np.maximum(positions, 0)], MISSING_ID)
        candidate_ids = np.concatenate([best_ids, chunk_ids], axis=1)
        candidate_scores = np.concatenate([best_scores, scores], axis=1)
        positions, best_scores = top_k(candidate_scores, k)
        found = positions != MISSING_ID
        best_ids = np.where(found, np.take_along_axis(candidate_ids, np.maximum(positions, 0), axis=1), MISSING_ID)
    return _rows(best_ids, best_scores)


def keyword_rankings(store: SegmentStore, texts: Sequence[str], k: int, where: Filter | None) -> list[Ranking]:
    return [store.keyword_search(text, k, where) for text in texts]


def fuse(rankings: Sequence[Ranking], k: int, weights: Sequence[float] | None = None, depth: int | None = None) -> Ranking:
    """Reciprocal rank fusion: documents high in several rankings come first; scores are the fused sums.

    ``weights`` (one per ranking, default 1) and ``depth`` (how much of each ranking counts,
    default all) are for measuring variants; searches use plain RRF.
    """
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings)):
        for rank, (document_id, _) in enumerate(ranking[:depth], start=1):
            fused[document_id] = fused.get(document_id, 0.0) + weight / (RRF_CONSTANT + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
