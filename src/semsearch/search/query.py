"""SearchRequest: how to search, checked once where a search is asked for and passed through whole.

The CLI, the HTTP API and ``Collection.search`` each make one from what their user gave (k,
mode, a date range, metadata values, backend parameters); everything after reads this value:
the server's batcher groups requests by it (it is hashable), retrieval ranks by it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semsearch.errors import SemsearchError
from semsearch.filters import Filter

MODES = ("semantic", "keyword", "hybrid")


@dataclass(frozen=True)
class SearchRequest:
    """k hits per query, by ``mode``, among the documents ``filter`` matches, with backend ``params``."""

    k: int = 10
    mode: str = "semantic"
    filter: Filter | None = None
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(
        cls,
        k: int = 10,
        *,
        mode: str = "semantic",
        date_from: datetime.date | str | None = None,
        date_to: datetime.date | str | None = None,
        where: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> SearchRequest:
        """A checked request: k at least 1, a known mode, a valid filter (``Filter.of``)."""
        if k < 1:
            raise SemsearchError(f"k must be at least 1, got {k}")
        if mode not in MODES:
            raise SemsearchError(f"no search mode {mode!r}; choose one of {', '.join(MODES)}")
        return cls(k, mode, Filter.of(date_from, date_to, where), tuple(sorted(params.items())))

    @property
    def search_params(self) -> dict[str, Any]:
        """The backend's search-time parameters, as keyword arguments."""
        return dict(self.params)
