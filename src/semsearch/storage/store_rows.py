"""Documents to rows and back: what semsearch writes is checked first; a stranger's row is read as well as it can be."""

from __future__ import annotations

import datetime
import json
from typing import Any

from semsearch.documents import Document, DocumentId, id_problem, lone_surrogate, meta_problem
from semsearch.errors import CollectionError


def _row_to_document(row: tuple[Any, Any, Any, Any]) -> Document:
    """A stored row as a Document, whatever its columns hold: a store may come from a stranger (SQLite keeps any
    type in any column), and one odd row must not fail every search that finds it. So it degrades: text that is
    not text is decoded (bytes, as UTF-8 with replacement) or shown (a number); a date that is not an ISO date
    is None; meta that is not a JSON object of JSON values (see ``meta_problem``: no NaN, lone surrogate or
    nesting past 64) is {}. What semsearch itself writes always reads back unchanged."""
    document_id, text, date, meta = row
    return Document(id=_stored_id(document_id), text=_stored_text(text), date=_stored_date(date), meta=_stored_meta(meta))


def _stored_id(value: Any) -> DocumentId:
    """An integer or a string id as stored; anything else a stranger's store holds is shown as text."""
    if isinstance(value, (int, str)):
        return value
    return _stored_text(value)


def _stored_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def _stored_date(value: Any) -> datetime.date | None:
    if not isinstance(value, str) or not value or len(value) > 32:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _origin(document: Document) -> str:
    return f"{document.origin}: " if document.origin else ""


def _document_row(document: Document, *, strings: bool = False) -> tuple[DocumentId, str, str | None, str]:
    """The row ``add`` inserts for a document, or a CollectionError saying what about it cannot be stored
    (``strings``: a store whose ids may be strings)."""
    where = _origin(document)
    document_id = document.id
    if (problem := id_problem(document_id, strings=strings)) is not None:
        raise CollectionError(f"{where}{problem}")
    if not isinstance(document.text, str):
        raise CollectionError(f"{where}document {document_id!r}: its text is {type(document.text).__name__}, not text")
    if (surrogate := lone_surrogate(document.text)) is not None:
        raise CollectionError(f"{where}document {document_id!r}: its text holds a lone surrogate {surrogate!r}, which is not text")
    date = document.date
    if isinstance(date, datetime.datetime):
        date = date.date()
    if date is not None and not isinstance(date, datetime.date):
        raise CollectionError(f"{where}document {document_id!r}: its date is {type(date).__name__}, not a date")
    meta = document.meta
    if meta:
        if (problem := meta_problem(meta)) is not None:
            raise CollectionError(f"{where}document {document_id!r}: {problem}")
        try:
            stored_meta = json.dumps(meta, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError) as error:
            raise CollectionError(f"{where}document {document_id!r}: its metadata cannot be written as JSON: {error}") from None
    elif meta is None or isinstance(meta, dict):
        stored_meta = "{}"
    else:
        raise CollectionError(f"{where}document {document_id!r}: {meta_problem(meta)}")
    return document_id, document.text, date.isoformat() if date else None, stored_meta


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _stored_meta(value: Any) -> dict[str, Any]:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str) or value in ("", "{}"):
        return {}
    try:
        meta = json.loads(value, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # not JSON (or NaN, or an integer of 4,300 digits), or nested past the stack
        return {}
    return meta if meta_problem(meta) is None else {}


