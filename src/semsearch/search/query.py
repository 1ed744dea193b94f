"""SearchRequest: how to search, checked once where a search is asked for and passed through whole.

The CLI, the HTTP API and ``Collection.search`` each make one from what their user gave (k,
mode, a date range, metadata values, backend parameters); everything after reads this value:
the server's batcher groups requests by it (it is hashable), retrieval ranks by it.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semsearch.errors import SemsearchError
from semsearch.filters import Filter

MODES = ("semantic", "keyword", "hybrid")
# Pages reach this far at most: each one searches offset + k deep.
MAX_OFFSET = 10_000


@dataclass(frozen=True)
class SearchRequest:
    """k hits per query, by ``mode``, among the documents ``filter`` matches, with backend ``params``."""

    k: int = 10
    mode: str = "semantic"
    filter: Filter | None = None
    params: tuple[tuple[str, Any], ...] = ()
    # Hits skipped before the k returned (the next page), and the score below which hits are dropped.
    offset: int = 0
    min_score: float | None = None

    @classmethod
    def of(
        cls,
        k: int = 10,
        *,
        mode: str = "semantic",
        date_from: datetime.date | str | None = None,
        date_to: datetime.date | str | None = None,
        where: Mapping[str, Any] | None = None,
        offset: int = 0,
        min_score: float | None = None,
        **params: Any,
    ) -> SearchRequest:
        """A checked request: k at least 1, a known mode, a valid filter (``Filter.of``)."""
        if k < 1:
            raise SemsearchError(f"k must be at least 1, got {k}")
        if mode not in MODES:
            raise SemsearchError(f"no search mode {mode!r}; choose one of {', '.join(MODES)}")
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
            raise SemsearchError(f"offset must be a whole number from 0 to {MAX_OFFSET:,}, got {offset!r}")
        if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not math.isfinite(min_score)):
            raise SemsearchError(f"min_score must be a finite number, got {min_score!r}")
        return cls(k, mode, Filter.of(date_from, date_to, where), tuple(sorted(params.items())), offset,
                   None if min_score is None else float(min_score))

    @property
    def search_params(self) -> dict[str, Any]:
        """The backend's search-time parameters, as keyword arguments."""
        return dict(self.params)


def check_query_texts(queries: list[str]) -> None:
    """Each query is text with a word in it: a blank one would return arbitrary documents, and half a surrogate
    pair (a terminal or file in the wrong encoding) cannot be encoded at all."""
    if any(not isinstance(text, str) or not text.strip() for text in queries):
        raise SemsearchError("the query is blank; type a few words")
    for text in queries:
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise SemsearchError(f"the query {text!r} is not valid text (it holds half of a UTF-16 surrogate pair); "
                                     "check the terminal's or the file's encoding") from None
