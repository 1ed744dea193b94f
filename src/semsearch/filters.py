"""Search filters: a date range and equality on metadata fields, checked once and turned into SQL.

The document store evaluates a filter (SQLite, indexed on date); the search strategies in
``retrieval`` decide how to combine it with the vector index.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from semsearch.errors import SemsearchError


class FilterError(SemsearchError):
    """A filter that cannot be applied: a date that is not YYYY-MM-DD, an empty range, a bad field name."""


def parse_filter_date(value: datetime.date | str | None, option: str) -> datetime.date | None:
    """A date from a ``datetime.date`` or an ISO ``YYYY-MM-DD`` string; None stays None."""
    if value is None or isinstance(value, datetime.date):
        return value.date() if isinstance(value, datetime.datetime) else value
    text = str(value).strip()
    try:
        if len(text) != 10:
            raise ValueError
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{option}: {value!r} is not a date; expected YYYY-MM-DD, e.g. 2003-04-01") from None


@dataclass(frozen=True)
class Filter:
    """Documents dated within [date_from, date_to] (either end optional) whose metadata has every ``where`` value.

    A document without a date never matches a date bound. A string value matches a field
    whose JSON value is that string or prints as it (``"3"`` matches 3), as a CLI user expects.
    """

    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    where: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(
        cls,
        date_from: datetime.date | str | None = None,
        date_to: datetime.date | str | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> Filter | None:
        """A checked filter, or None when nothing is asked for."""
        start = parse_filter_date(date_from, "date_from")
        end = parse_filter_date(date_to, "date_to")
        if start and end and start > end:
            raise FilterError(f"date_from {start} is after date_to {end}: no document can match")
        pairs = tuple(sorted((where or {}).items()))
        for name, value in pairs:
            if not isinstance(name, str) or not name or '"' in name or "\\" in name:
                raise FilterError(f"metadata field {name!r}: a field name is non-empty text without quotes or backslashes")
            if not isinstance(value, (str, int, float, bool)) and value is not None:
                raise FilterError(f"metadata field {name!r}: can only compare with text, a number, true, false or null")
        if start is None and end is None and not pairs:
            return None
        return cls(start, end, pairs)

    def sql(self, table: str = "documents") -> tuple[str, list[Any]]:
        """A WHERE clause over ``table``'s columns and its parameters."""
        clauses: list[str] = []
        parameters: list[Any] = []
        if self.date_from is not None:
            clauses.append(f"{table}.date >= ?")
            parameters.append(self.date_from.isoformat())
        if self.date_to is not None:
            clauses.append(f"{table}.date <= ?")
            parameters.append(self.date_to.isoformat())
        for name, value in self.where:
            path = f'$."{name}"'
            if value is None:
                clauses.append(f"json_type({table}.meta, ?) = 'null'")
                parameters.append(path)
            elif isinstance(value, str):
                clauses.append(f"(json_extract({table}.meta, ?) = ? OR CAST(json_extract({table}.meta, ?) AS TEXT) = ?)")
                parameters.extend([path, value, path, value])
            else:
                clauses.append(f"json_extract({table}.meta, ?) = ?")
                parameters.extend([path, int(value) if isinstance(value, bool) else value])
        return " AND ".join(clauses), parameters

    def describe(self) -> str:
        parts = []
        if self.date_from or self.date_to:
            parts.append(f"dated {self.date_from or '…'} to {self.date_to or '…'}")
        parts.extend(f"{name} = {value!r}" for name, value in self.where)
        return ", ".join(parts)


def parse_where(values: Iterable[str], bad_pair: Callable[[int, str], Exception] | None = None) -> dict[str, str]:
    """``FIELD=VALUE`` pairs, from the command line or a URL's query; ``bad_pair(position, value)``
    makes the error for a value that is not one (by default, worded for ``--where``)."""
    where: dict[str, str] = {}
    for position, value in enumerate(values):
        name, separator, field_value = value.partition("=")
        if not separator or not name.strip():
            if bad_pair is not None:
                raise bad_pair(position, value)
            raise FilterError(f"--where {value!r}: expected FIELD=VALUE, e.g. --where section=sport")
        where[name.strip()] = field_value
    return where
