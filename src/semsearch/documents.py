"""The two records that flow through semsearch: a Document in, a Hit out."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any


# Ids are SQLite INTEGERs and the indexes' non-negative 64-bit keys (-1 means "nothing found").
MAX_DOCUMENT_ID = 2**63 - 1
# Metadata is stored as JSON and served as JSON; deeper nesting than this is refused where it is read (the
# JSON encoders of the CLI and the server recurse, and a corpus line of 100,000 brackets is no metadata).
MAX_META_DEPTH = 64


# A string id (format 2): any text up to this long, kept as given.
MAX_ID_LENGTH = 1_024
DocumentId = int | str


def is_document_id(value: int) -> bool:
    return 0 <= value <= MAX_DOCUMENT_ID


def id_problem(value: object, *, strings: bool) -> str | None:
    """Why ``value`` cannot be a document's id, or None: an integer from 0 to 2^63 - 1 or, where ``strings``
    (a collection of string ids), a non-empty string of at most ``MAX_ID_LENGTH`` characters of text."""
    if isinstance(value, str) and strings:
        if not value:
            return "document id '' is empty"
        if len(value) > MAX_ID_LENGTH:
            return f"document id {value[:40]!r}... is longer than {MAX_ID_LENGTH:,} characters"
        if "\x00" in value or lone_surrogate(value) is not None:
            return f"document id {value[:60]!r} holds a NUL or a lone surrogate, which is not text"
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not is_document_id(value):
        if strings:
            return f"document id {value!r} is neither a string nor an integer from 0 to {MAX_DOCUMENT_ID}"
        return f"document id {value!r} is not an integer from 0 to {MAX_DOCUMENT_ID}"
    return None


def id_from_text(text: str, kind: str) -> DocumentId:
    """An id typed as text (a command line, a URL path) as a collection of ``kind`` keeps it: the text itself where
    ids are strings; where they are integers, the integer it spells in ASCII digits, or the text (which no document has)."""
    digits = text.strip()
    if kind == "integer" and digits.isascii() and digits.lstrip("+").isdigit():
        return int(digits)
    return text


def check_id_kind(documents: list[Document], kind: str | None) -> str | None:
    """The collection's id kind ("integer" or "string") after ``documents``, which must all be of ``kind`` (None:
    not known yet, the first document's decides). Mixing them is a ValueError naming the first one that differs."""
    for document in documents:
        found = "string" if isinstance(document.id, str) else "integer"
        if kind is None:
            kind = found
        elif found != kind:
            where = f"{document.origin}: " if document.origin else ""
            raise ValueError(f"{where}document id {document.id!r} is {'a string' if found == 'string' else 'an integer'}, "
                             f"but the collection's ids are {kind}s")
    return kind


@dataclass(frozen=True)
class Document:
    """One text of a corpus, with the id it is known by in a collection.

    ``origin`` (the file and line or row it was read from, when read from a file) is for error
    messages only: it is not stored and two documents that differ only there are equal.
    """

    id: DocumentId
    text: str
    date: datetime.date | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    origin: str | None = field(default=None, compare=False, repr=False)


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in ``text`` (half a UTF-16 pair, as a JSON escape like \\ud800 can give), or None.

    Such a string is not text: it cannot be written as UTF-8, so SQLite, the terminal and JSON all refuse it.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return text[error.start]
    return None


def meta_problem(meta: Any) -> str | None:
    """Why ``meta`` cannot be a document's metadata, or None when it can.

    Metadata is a dict of JSON values (other scalars, dates say, are stored as their text), nested at most
    ``MAX_META_DEPTH`` deep, without NaN or infinities (JSON has neither) and without lone surrogates in
    names or strings. Walked without recursion, so any depth is answered.
    """
    if not isinstance(meta, dict):
        return f"metadata must be a JSON object, not {_json_kind(meta)}"
    stack: list[tuple[Any, int, str | None]] = [(meta, 0, None)]
    while stack:
        value, depth, top = stack.pop()
        where = "metadata" if top is None else f"field {top!r}"
        if isinstance(value, str):
            if (surrogate := lone_surrogate(value)) is not None:
                return f"{where} holds a lone surrogate {surrogate!r}, which is not text"
        elif isinstance(value, float):
            if not math.isfinite(value):
                shown = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
                return f"{where} holds {shown}, which JSON cannot hold; use null"
        elif isinstance(value, (dict, list, tuple)):
            if depth >= MAX_META_DEPTH:
                return f"{where} is nested more than {MAX_META_DEPTH} deep"
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, (str, int, float)) and key is not None:  # bool is an int
                        return f"{where} has a name that is {_json_kind(key)}, not text"
                    if isinstance(key, str) and lone_surrogate(key) is not None:
                        return f"{where} has a lone surrogate in the name {key!r}, which is not text"
                    stack.append((item, depth + 1, str(key) if top is None else top))
            else:
                stack.extend((item, depth + 1, top) for item in value)
    return None


def _json_kind(value: Any) -> str:
    names = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array", tuple: "an array"}
    return names.get(type(value), f"a {type(value).__name__}")


@dataclass(frozen=True)
class Hit:
    """One search result: a document and its cosine similarity to the query (1 is identical)."""

    id: DocumentId
    text: str
    date: datetime.date | None
    score: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The shape the CLI's --json and the HTTP API share."""
        record: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "date": self.date.isoformat() if self.date else None,
            "score": round(self.score, 6),
        }
        if self.meta:
            record["meta"] = self.meta
        return record
