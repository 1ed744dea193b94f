"""Filters a segment has been searched with more than once, remembered as the keys they match.

A search filtered the same way again (a date range kept while the query changes, the next page
of a filtered search) then asks SQLite nothing about the filter: its count, its share of the
segment, the orphans and candidates it lets through and the keys an exact scan reads all come
from one boolean array over the matching keys' range. Lucene's filter cache does the same.

It is safe because a segment's store never changes once a manifest names it, and an
``OpenSegment``'s deletions are fixed for its lifetime (an update makes a new one). A filter is
remembered on its second use, not its first: reading every key a broad filter matches costs
about as much as a few searches, paid only for filters that come back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np

from semsearch.filters import Filter

# Filters remembered per segment, the least recently used forgotten first: each costs a byte per key in
# its range (1.1 MB for a filter spanning a million-document segment).
REMEMBERED_FILTERS = 16
# Uses of a filter before it is remembered; uses are counted for up to this many filters.
USES_BEFORE_REMEMBERED = 2
COUNTED_FILTERS = 256

FilterKey = tuple[str, str]


class MatchingKeys:
    """The keys one filter matches in one segment, as a boolean array over their range."""

    def __init__(self, keys: np.ndarray) -> None:
        self.count = len(keys)
        self.low = int(keys[0]) if len(keys) else 0
        self.matches = np.zeros(int(keys[-1]) - self.low + 1 if len(keys) else 0, dtype=bool)
        self.matches[keys - self.low] = True

    def keys(self) -> np.ndarray:
        """Every matching key, ascending."""
        return np.flatnonzero(self.matches).astype(np.int64) + self.low

    def among(self, keys: Iterable[int]) -> set[int]:
        """Those of ``keys`` the filter matches."""
        candidates = np.fromiter((int(key) for key in keys), dtype=np.int64)
        offsets = candidates - self.low
        inside = (offsets >= 0) & (offsets < len(self.matches))
        inside[inside] = self.matches[offsets[inside]]
        return set(candidates[inside].tolist())


class FilterMemory:
    """Per segment: how often each filter was used, and the matching keys of those used often enough."""

    def __init__(self, remembered: int = REMEMBERED_FILTERS, uses_before: int = USES_BEFORE_REMEMBERED) -> None:
        self._capacity = remembered
        self._uses_before = uses_before
        self._uses: OrderedDict[FilterKey, int] = OrderedDict()
        self._remembered: OrderedDict[FilterKey, MatchingKeys] = OrderedDict()
        self._lock = threading.Lock()

    def use(self, where: Filter, load: Callable[[], np.ndarray]) -> MatchingKeys | None:
        """Count a search's use of ``where``; its matching keys if it is remembered now (``load`` reads them)."""
        key = _key(where)
        with self._lock:
            if key in self._remembered:
                self._remembered.move_to_end(key)
                return self._remembered[key]
            uses = self._uses.pop(key, 0) + 1
            self._uses[key] = uses
            while len(self._uses) > COUNTED_FILTERS:
                self._uses.popitem(last=False)
            if uses < self._uses_before:
                return None
        matching = MatchingKeys(load())
        with self._lock:
            self._uses.pop(key, None)
            self._remembered[key] = matching
            while len(self._remembered) > self._capacity:
                self._remembered.popitem(last=False)
        return matching

    def get(self, where: Filter | None) -> MatchingKeys | None:
        """The matching keys of ``where`` if it is remembered; not a use."""
        if where is None:
            return None
        with self._lock:
            return self._remembered.get(_key(where))


def _key(where: Filter) -> FilterKey:
    clause, parameters = where.sql()
    return clause, repr(parameters)  # repr tells 1 from '1' and is hashable whatever the parameters hold
