"""What a corpus's values may be, and how an error message quotes them: dates, integer ids, column names.

Shared by the corpus reader and the embedding-file readers, so that a date or an id means the same
in every format, and a message stays one line whatever the value holds (a newline, a lone surrogate,
70,000 characters, an integer of 5,000 digits).
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable
from typing import Any

_INTEGER = re.compile(r"[+-]?[0-9]+")
_SHOWN = 60  # characters of a value quoted in an error message


def shown(value: Any, limit: int = _SHOWN) -> str:
    """A value as an error message quotes it: its repr (one line, surrogates escaped), cut to ``limit`` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python converts to text (4,300)
        return f"an integer of {value.bit_length() * 0.30103:,.0f} digits" if isinstance(value, int) else f"a {type(value).__name__}"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def names(columns: Iterable[Any], limit: int = 20) -> str:
    """Column or field names for a message: as they are when printable, else quoted; at most ``limit`` of them."""
    columns = list(columns)
    parts = [column if isinstance(column, str) and column.isprintable() and column.strip() == column and column else shown(column) for column in columns[:limit]]
    if len(columns) > limit:
        parts.append(f"and {len(columns) - limit:,} more")
    return ", ".join(parts) or "(none)"


def one_line(text: str) -> str:
    """A library's message (pyarrow's may hold newlines) as part of one line."""
    return " ".join(str(text).split())


def integer_id(value: Any) -> int | None:
    """An id as a file may write it: an integer, a whole float (7.0, from tools that have only floats) or ASCII
    digits with an optional sign and spaces around; None for anything else (True, 2.5, "1_0", an Arabic-Indic 3,
    which int() would take). Digit strings too long for any id give 2**64, out of the ids' range, unconverted."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(digits := value.strip()):
        return 2**64 if len(digits.lstrip("+-0")) > 19 else int(digits)
    return None


def parse_date(value: Any) -> datetime.date | None:
    """Dates as the ABC files write them (20030219) or as ISO 8601 (2003-02-19, 2003-02-19T10:00).

    Anything else (a day that does not exist, year 0 or 10000, a number that is not YYYYMMDD, a list)
    is a ValueError that quotes the value.
    """
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    expected = "expected YYYYMMDD or YYYY-MM-DD"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{shown(value)} is not a date ({expected})")
    if isinstance(value, int) and not 0 <= value < 10**8:
        raise ValueError(f"{shown(value)} is not a date ({expected})")
    text = str(value).strip()
    if not text:
        return None
    try:
        if len(text) == 8 and text.isascii() and text.isdigit():
            return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        if len(text) >= 10 and text[4] == "-" and text[:10].isascii():
            return datetime.date.fromisoformat(text[:10])
    except ValueError as error:
        raise ValueError(f"{shown(text)} is not a date: {error}") from None
    raise ValueError(f"{shown(text)} is not a date ({expected})")
