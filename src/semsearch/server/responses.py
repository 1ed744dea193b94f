"""How the HTTP API answers what goes wrong: one-line messages for 422s, 4xx and 503, and JSON-safe hits."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from semsearch.documents import Hit
from semsearch.errors import SemsearchError
from semsearch.filters import parse_where
from semsearch.server.batching import CollectionDamaged
from semsearch.server.models import BODY_EXAMPLE, MAX_HITS_PER_REQUEST, WHERE


def describe_errors(errors: Sequence[dict[str, Any]]) -> str:
    """FastAPI's validation errors as one line a person can act on."""
    parts = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            parts.append(f"the request body is not valid JSON ({reason}); send an object such as {BODY_EXAMPLE}")
        elif location == ["body"] and isinstance(error.get("input"), (str, bytes)):
            parts.append(f"the request body must be a JSON object sent with Content-Type: application/json, such as {BODY_EXAMPLE}")
        else:
            reason = error.get("msg", "invalid").removeprefix("Value error, ")
            if len(location) > 2 and location[-1] == "[key]":  # pydantic's place for a bad key of an object
                reason = f"field name {_field_name(location[-2], quote=True)}: {reason}"
                location = location[:-2]
            field = ".".join(_field_name(part) for part in (location[1:] if len(location) > 1 else location)) or "request"
            parts.append(f"{field}: {reason}")
    return " ".join("; ".join(parts).splitlines())  # one line, whatever a message or a field name holds


def _field_name(name: str, quote: bool = False) -> str:
    """A field name as is, or quoted when a client sent something odd (empty, a newline, a dot); a long one cut short."""
    if len(name) > 40:
        name = name[:40] + "…"
    plain = name and name.isprintable() and not any(mark in name for mark in ".;: ")
    return json.dumps(name, ensure_ascii=False) if quote or not plain else name


def bad_where_pair(position: int, pair: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("query", "where", position), "input": pair,
                                    "msg": f"{pair!r} is not FIELD=VALUE, e.g. where=section=sport"}])


def where_pairs(values: Sequence[str]) -> dict[str, Any]:
    """GET's ``where=FIELD=VALUE`` parameters, checked as POST's ``where`` object is."""
    pairs = parse_where(values, bad_where_pair)
    try:
        return WHERE.validate_python(pairs)
    except ValidationError as error:
        raise RequestValidationError([{**entry, "loc": ("query", "where", *entry["loc"])} for entry in error.errors()]) from None


def too_much_work_error(queries: int, k: int) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", "k"), "input": k, "msg": (
        f"{queries} queries at k={k} ask for {queries * k:,} hits; a request may ask for at most {MAX_HITS_PER_REQUEST:,} "
        f"(queries x k): send fewer queries or a smaller k")}])


def hit_json(hit: Hit) -> dict[str, Any] | None:
    """A hit as JSON can carry it: None for a hit without a finite score (it cannot be ranked), and a
    metadata value that is NaN or infinite (JSON has neither) as null."""
    if not math.isfinite(hit.score):
        return None
    record = hit.to_json()
    if "meta" in record:
        record["meta"] = _finite(record["meta"])
    return record


def hits_json(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    return [record for hit in hits if (record := hit_json(hit)) is not None]


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def blank_query_error(location: tuple[str | int, ...]) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": location, "msg": "the query is blank; type a few words", "input": ""}])


async def validation_error_handler(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = error.errors()
    # Without the input: echoing a 2,000-character query back helps nobody.
    detail = [{key: value for key, value in entry.items() if key != "input"} for entry in errors]
    return JSONResponse(status_code=422, content={"message": describe_errors(errors), "detail": jsonable_encoder(detail)})


async def http_error_handler(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """FastAPI's own HTTP errors in our shape, a one-line ``message``. Its one 400, a body whose bytes
    cannot be decoded as JSON text at all, is a client's mistake like any other bad body: a 422."""
    if error.status_code == 400:
        message = f"the request body cannot be read as JSON text; send UTF-8 JSON such as {BODY_EXAMPLE}"
        return JSONResponse(status_code=422, content={"message": message})
    message = " ".join(str(error.detail).splitlines())
    return JSONResponse(status_code=error.status_code, content={"message": message, "detail": error.detail}, headers=error.headers)


def search_error(error: SemsearchError) -> JSONResponse:
    """A search's error: 503 when the collection is damaged (the server's trouble), else 422 (the request's)."""
    status = 503 if isinstance(error, CollectionDamaged) else 422
    return JSONResponse(status_code=status, content={"message": " ".join(str(error).splitlines())})


def public_info(facts: dict[str, Any]) -> dict[str, Any]:
    """``Collection.info()`` without the server's paths, which are no client's business: no ``path``, but the
    collection's ``name`` (its directory's, without ``.semsearch``: the page's title); the corpus (``source``)
    and a model given by path (``encoder.argument``) by their last component only."""
    path = facts.get("path")
    facts = {key: value for key, value in facts.items() if key != "path"}
    if isinstance(path, str):  # the directory's name without its ending: "news.semsearch" -> "news"
        directory = _last_component(path)
        facts["name"] = directory.removesuffix(".semsearch") or directory
    if isinstance(facts.get("source"), str):
        facts["source"] = _last_component(facts["source"])
    encoder = facts.get("encoder")
    if isinstance(encoder, dict) and isinstance(encoder.get("argument"), str) and _is_path(encoder["argument"]):
        facts["encoder"] = {**encoder, "argument": _last_component(encoder["argument"])}
    return facts


def _last_component(path: str) -> str:
    return re.split(r"[\\/]", path.rstrip("/\\"))[-1] or path


def _is_path(argument: str) -> bool:
    """A model argument that names a place on this machine (a hub name such as ``org/model`` is kept)."""
    if argument.startswith(("/", "~", ".", "\\")) or re.match(r"[A-Za-z]:[\\/]", argument):
        return True
    try:
        return Path(argument).exists()
    except (OSError, ValueError):
        return False


