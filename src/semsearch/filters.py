"""Search filters: a date range and conditions on metadata fields, checked once and turned into SQL.

Metadata conditions take Chroma's form, the one vector stores share: ``{"desk": "sport"}``
(equality), ``{"year": {"$gte": 2003}}``, ``{"desk": {"$in": ["business", "sport"]}}``, with
``$eq $ne $gt $gte $lt $lte $in $nin`` and ``{"$and": [...]}`` / ``{"$or": [...]}``. The command
line and the URL say the same as ``desk=sport``, ``year>=2003``, ``desk!=sport``,
``desk in (business,sport)`` (``parse_where``). Numbers compare as numbers, ``YYYY-MM-DD``
dates as dates (ISO text orders as dates do), other text as text; a value typed as text
(``"2003"``) matches a field holding the number it reads as, as a command line user expects.

The document store evaluates a filter (SQLite, indexed on date); the search strategies in
``search.retrieval`` decide how to combine it with the vector index.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from semsearch.errors import SemsearchError

Scalar = Union[str, int, float, bool, None]
COMPARISONS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
MEMBERSHIP = ("$in", "$nin")
OPERATORS = (*COMPARISONS, *MEMBERSHIP)
# Bounds on what one filter may ask, so that a request cannot make SQLite do unbounded work.
MAX_CONDITIONS = 64
MAX_VALUES = 1_000
MAX_DEPTH = 8
SQLITE_INTEGER = (-(2**63), 2**63 - 1)
_CLI_OPERATOR = re.compile(r"^\s*(?P<field>[^=!<>]+?)\s*(?P<operator>!=|>=|<=|=|>|<)(?P<value>.*)$", re.DOTALL)
_CLI_MEMBERSHIP = re.compile(r"^\s*(?P<field>.+?)\s+(?P<operator>not\s+in|in)\s*\((?P<values>.*)\)\s*$", re.DOTALL | re.IGNORECASE)


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
class Condition:
    """One field compared with a value (or, for $in/$nin, a tuple of values)."""

    field: str
    operator: str
    value: Scalar | tuple[Scalar, ...]

    def describe(self) -> str:
        if self.operator in MEMBERSHIP:
            return f"{self.field} {'in' if self.operator == '$in' else 'not in'} ({', '.join(map(repr, self.value))})"  # type: ignore[arg-type]
        return f"{self.field} {COMPARISONS[self.operator]} {self.value!r}"


@dataclass(frozen=True)
class Combined:
    """All ($and) or any ($or) of several conditions."""

    operator: str
    parts: tuple[Condition | Combined, ...]

    def describe(self) -> str:
        joiner = " and " if self.operator == "$and" else " or "
        return "(" + joiner.join(part.describe() for part in self.parts) + ")"


Where = Union[Condition, Combined]


def _field_name(name: Any) -> str:
    if not isinstance(name, str) or not name or '"' in name or "\\" in name or name.startswith("$") or len(name) > 200 \
            or not name.isprintable():
        raise FilterError(f"metadata field {name!r}: a field name is printable text without quotes or backslashes, not starting with $")
    return name


def _scalar(name: str, value: Any) -> Scalar:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        if isinstance(value, str) and len(value) > 10_000:
            raise FilterError(f"metadata field {name!r}: a value of {len(value):,} characters is too long to compare with")
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise FilterError(f"metadata field {name!r}: the value {value!r} is not valid text (half of a surrogate pair)") from None
        return value
    if isinstance(value, int):
        if not SQLITE_INTEGER[0] <= value <= SQLITE_INTEGER[1]:
            raise FilterError(f"metadata field {name!r}: {value} is outside the range of a 64-bit integer")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"metadata field {name!r}: {value} is not a finite number")
        return value
    raise FilterError(f"metadata field {name!r}: can only compare with text, a number, true, false or null")


class _Reader:
    """Turns a Chroma-style mapping into conditions, counting them against the bounds."""

    def __init__(self) -> None:
        self.conditions = 0

    def where(self, where: Mapping[str, Any], depth: int = 0) -> Where | None:
        if depth > MAX_DEPTH:
            raise FilterError(f"the filter nests $and/$or more than {MAX_DEPTH} deep")
        if not isinstance(where, Mapping):
            raise FilterError(f"a filter is a mapping of field to value or {{operator: value}}, got {type(where).__name__}")
        parts: list[Where] = []
        for key, value in sorted(where.items(), key=lambda item: str(item[0])):
            if key in ("$and", "$or"):
                if not isinstance(value, (list, tuple)) or not value:
                    raise FilterError(f"{key} takes a non-empty list of filters")
                inner = [self.where(part, depth + 1) for part in value]
                kept = tuple(part for part in inner if part is not None)
                parts.append(kept[0] if len(kept) == 1 else Combined(key, kept))
            else:
                parts.extend(self.field(_field_name(key), value))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Combined("$and", tuple(parts))

    def field(self, name: str, value: Any) -> list[Condition]:
        if not isinstance(value, Mapping):
            return [self.condition(name, "$eq", value)]
        if not value:
            raise FilterError(f"metadata field {name!r}: an empty {{}} compares with nothing; e.g. {{\"$gte\": 2003}}")
        return [self.condition(name, operator, operand) for operator, operand in sorted(value.items(), key=lambda item: str(item[0]))]

    def condition(self, name: str, operator: Any, operand: Any) -> Condition:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(f"the filter has more than {MAX_CONDITIONS} conditions")
        if operator not in OPERATORS:
            raise FilterError(f"metadata field {name!r}: no operator {operator!r}; use one of {', '.join(OPERATORS)}")
        if operator in MEMBERSHIP:
            if not isinstance(operand, (list, tuple)) or not operand:
                raise FilterError(f"metadata field {name!r}: {operator} takes a non-empty list of values")
            if len(operand) > MAX_VALUES:
                raise FilterError(f"metadata field {name!r}: {operator} takes at most {MAX_VALUES:,} values")
            return Condition(name, operator, tuple(_scalar(name, item) for item in operand))
        scalar = _scalar(name, operand)
        if scalar is None and operator not in ("$eq", "$ne"):
            raise FilterError(f"metadata field {name!r}: {operator} cannot compare with null")
        return Condition(name, operator, scalar)


@dataclass(frozen=True)
class Filter:
    """Documents dated within [date_from, date_to] (either end optional) whose metadata ``where`` matches.

    A document without a date never matches a date bound; a document without a field matches
    only ``$ne`` and ``$nin`` conditions on it.
    """

    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    where: Where | None = None

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
        condition = _Reader().where(where) if where else None
        if start is None and end is None and condition is None:
            return None
        return cls(start, end, condition)

    def fields(self) -> list[str]:
        """The metadata fields the filter names, each once."""
        names: list[str] = []

        def visit(part: Where | None) -> None:
            if isinstance(part, Condition):
                names.append(part.field)
            elif isinstance(part, Combined):
                for inner in part.parts:
                    visit(inner)

        visit(self.where)
        return list(dict.fromkeys(names))

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
        if self.where is not None:
            clause, where_parameters = _sql(self.where, table)
            clauses.append(clause)
            parameters.extend(where_parameters)
        return " AND ".join(clauses) or "1", parameters

    def describe(self) -> str:
        parts = []
        if self.date_from or self.date_to:
            parts.append(f"dated {self.date_from or '…'} to {self.date_to or '…'}")
        if self.where is not None:
            parts.append(self.where.describe())
        return ", ".join(parts)


def _number(value: Scalar) -> float | None:
    """A value as a number, if it is one or is text that reads as one (``"2003"``)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _equal(path: str, value: Scalar, table: str) -> tuple[str, list[Any]]:
    extract = f"json_extract({table}.meta, ?)"
    if value is None:
        return f"json_type({table}.meta, ?) = 'null'", [path]
    if isinstance(value, str):
        return f"({extract} = ? OR CAST({extract} AS TEXT) = ?)", [path, value, path, value]
    return f"{extract} = ?", [path, int(value) if isinstance(value, bool) else value]


def _order(path: str, symbol: str, value: Scalar, table: str) -> tuple[str, list[Any]]:
    """<, <=, >, >=: numbers against numeric fields, anything else against text fields."""
    extract, kind = f"json_extract({table}.meta, ?)", f"json_type({table}.meta, ?)"
    number = _number(value)
    if number is not None:  # a number, or text that is one (a CSV's fields are all text)
        numeric_text = f"({kind} = 'text' AND {extract} GLOB '*[0-9]*' AND NOT {extract} GLOB '*[^0-9.eE+ -]*' AND CAST({extract} AS REAL) {symbol} ?)"
        return f"(({kind} IN ('integer', 'real') AND {extract} {symbol} ?) OR {numeric_text})", [path, path, number, path, path, path, path, number]
    return f"({kind} = 'text' AND {extract} {symbol} ?)", [path, path, str(value)]


def _sql(part: Where, table: str) -> tuple[str, list[Any]]:
    if isinstance(part, Combined):
        pieces = [_sql(inner, table) for inner in part.parts]
        joiner = " AND " if part.operator == "$and" else " OR "
        return "(" + joiner.join(clause for clause, _ in pieces) + ")", [value for _, values in pieces for value in values]
    path = f'$."{part.field}"'
    if part.operator in ("$eq", "$ne"):
        clause, parameters = _equal(path, part.value, table)  # type: ignore[arg-type]
        return (clause, parameters) if part.operator == "$eq" else (f"NOT COALESCE({clause}, 0)", parameters)
    if part.operator in MEMBERSHIP:
        pieces = [_equal(path, value, table) for value in part.value]  # type: ignore[union-attr]
        clause = "(" + " OR ".join(piece for piece, _ in pieces) + ")"
        parameters = [value for _, values in pieces for value in values]
        return (clause, parameters) if part.operator == "$in" else (f"NOT COALESCE({clause}, 0)", parameters)
    return _order(path, COMPARISONS[part.operator], part.value, table)  # type: ignore[arg-type]


def parse_where(values: Iterable[str], bad_pair: Callable[[int, str], Exception] | None = None) -> dict[str, Any]:
    """``--where`` conditions, from the command line or a URL's query, as a Chroma-style filter.

    ``FIELD=VALUE``, ``FIELD!=VALUE``, ``FIELD>=VALUE`` (and ``>``, ``<=``, ``<``),
    ``FIELD in (A,B)``, ``FIELD not in (A,B)``; several are all required. ``bad_pair(position,
    value)`` makes the error for a value that is none of these (by default, worded for ``--where``).
    Plain equalities come back as ``{FIELD: VALUE}``, as before operators existed.
    """
    where: dict[str, Any] = {}
    for position, text in enumerate(values):
        membership = _CLI_MEMBERSHIP.match(text)
        match = None if membership else _CLI_OPERATOR.match(text)
        if membership:
            field, operator = membership["field"].strip(), "$nin" if "not" in membership["operator"].lower() else "$in"
            operand: Any = [item.strip() for item in membership["values"].split(",")]
        elif match and match["field"].strip():
            field = match["field"].strip()
            operator = {symbol: name for name, symbol in COMPARISONS.items()}[match["operator"]]
            operand = match["value"]
        else:
            if bad_pair is not None:
                raise bad_pair(position, text)
            raise FilterError(f"--where {text!r}: expected FIELD=VALUE, FIELD>=VALUE, FIELD!=VALUE or 'FIELD in (A,B)', e.g. --where desk=sport")
        existing = where.get(field)
        if operator == "$eq" and existing is None:
            where[field] = operand
            continue
        conditions = existing if isinstance(existing, dict) else ({} if existing is None else {"$eq": existing})
        conditions[operator] = operand
        where[field] = conditions
    return where
