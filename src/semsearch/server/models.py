"""The HTTP API's request and response models and its limits: what a client may ask, checked by FastAPI."""

from __future__ import annotations

import datetime
import json
import math
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
)

from semsearch.filters import COMPARISONS, MEMBERSHIP, OPERATORS
from semsearch.search.query import MAX_OFFSET, MODES, SearchRequest

MAX_K = 1000
MAX_QUERY_CHARS = 2000
MAX_BATCH_QUERIES = 100
# The most hits one request may ask for (queries x k): 100 queries at k=100, or 10 at k=1000.
MAX_HITS_PER_REQUEST = 10_000
# A metadata filter: each pair is one more SQL condition (SQLite's expression depth is 1,000).
MAX_WHERE_PAIRS = 20
MAX_WHERE_FIELD_CHARS = 100
MAX_WHERE_VALUE_CHARS = 1000
MAX_WHERE_VALUES = 100  # in one $in or $nin list
# SQLite's integers are 64-bit; a larger whole number cannot be compared with one.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# A full batch of the longest queries is about 200 kB of JSON (800 kB if every character is escaped).
MAX_BODY_BYTES = 1_000_000

QueryText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY_CHARS)]


def _check_field_name(name: str) -> str:
    if not name.isprintable():
        raise ValueError("a metadata field name is printable text, without control characters")
    return name


def _check_where_value(value: Any) -> Any:
    """A metadata condition the server will pass on: a value to equal, or ``{operator: operand}`` in Chroma's form
    (``{"$gte": 2003}``, ``{"$in": ["sport", "business"]}``), each value text, a finite number SQLite can hold,
    true, false or null."""
    if isinstance(value, dict):
        if not value:
            raise ValueError(f"an operator object names at least one of {', '.join(OPERATORS)}")
        for operator, operand in value.items():
            if operator not in OPERATORS:
                raise ValueError(f"{_shown_value(operator)} is not an operator; use one of {', '.join(OPERATORS)}")
            if operator in MEMBERSHIP:
                if not isinstance(operand, list) or len(operand) > MAX_WHERE_VALUES:
                    raise ValueError(f"{operator} takes a list of at most {MAX_WHERE_VALUES} values")
                for item in operand:
                    _check_scalar(item)
            else:
                _check_scalar(operand)
        return value
    return _check_scalar(value)


def _check_scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"a whole number must be from -2^63 to 2^63-1 (SQLite's integers), got {str(value)[:30]}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a number must be finite, got {value}")
        return value
    if isinstance(value, str):
        if len(value) > MAX_WHERE_VALUE_CHARS:
            raise ValueError(f"a value has at most {MAX_WHERE_VALUE_CHARS:,} characters, got {len(value):,}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a value is text: it holds half of a UTF-16 surrogate pair") from None
        return value
    raise ValueError("a metadata value is text, a number, true, false or null")


WhereField = Annotated[str, StringConstraints(min_length=1, max_length=MAX_WHERE_FIELD_CHARS), AfterValidator(_check_field_name)]
_SCALAR_SCHEMA = [
    {"type": "string", "maxLength": MAX_WHERE_VALUE_CHARS},
    {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
    {"type": "number"},
    {"type": "boolean"},
    {"type": "null"},
]
WhereValue = Annotated[Any, PlainValidator(_check_where_value), WithJsonSchema({"anyOf": [*_SCALAR_SCHEMA, {
    "type": "object", "minProperties": 1, "additionalProperties": False, "description": "Chroma's operators",
    "properties": {
        **{operator: {"anyOf": _SCALAR_SCHEMA} for operator in COMPARISONS},
        **{operator: {"type": "array", "maxItems": MAX_WHERE_VALUES, "items": {"anyOf": _SCALAR_SCHEMA}} for operator in MEMBERSHIP},
    }}]})]
Where = Annotated[dict[WhereField, WhereValue], Field(max_length=MAX_WHERE_PAIRS)]
WHERE = TypeAdapter(Where)


class HitModel(BaseModel):
    id: int | str
    text: str
    date: str | None = Field(description="ISO 8601 date, or null when the corpus had none")
    score: float = Field(description="Higher is nearer. semantic: cosine similarity (1 is identical); keyword: -BM25; "
                                     "hybrid: the fused reciprocal-rank sum")
    meta: dict[str, Any] | None = None


class SearchResponse(BaseModel):
    query: str
    hits: list[HitModel]


Mode = Literal["semantic", "keyword", "hybrid"]
assert set(get_args(Mode)) == set(MODES), "the API's modes are Collection.search's"


def _iso_date(value: Any) -> Any:
    """A day as YYYY-MM-DD only: pydantic would also read a number as seconds since 1970 (date_to=0 as 1970-01-01)."""
    if isinstance(value, datetime.date) or value is None:
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"expected a day as YYYY-MM-DD, e.g. 2003-04-01, got {_shown_value(value)}")
    return value


def _shown_value(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False) if isinstance(value, (str, int, float, bool)) else type(value).__name__
    return shown if len(shown) <= 40 else shown[:40] + "…"


Day = Annotated[datetime.date, BeforeValidator(_iso_date)]


class SearchOptions(BaseModel):
    """How to search, for GET (as query parameters) and POST (in the body) alike."""

    k: int = Field(10, ge=1, le=MAX_K, description="Hits per query")
    mode: Mode = Field("semantic", description="semantic: by meaning; keyword: by words (BM25); hybrid: both, fused by reciprocal rank")
    date_from: Day | None = Field(None, description="Only documents dated on or after this day (YYYY-MM-DD)")
    date_to: Day | None = Field(None, description="Only documents dated on or before this day (YYYY-MM-DD)")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Hits skipped first: the next page is offset=k")
    min_score: float | None = Field(None, allow_inf_nan=False, description="Leave out hits scored below this")

    def request(self, where: dict[str, Any]) -> SearchRequest:
        """The one value the search goes on with (a bad filter is a SemsearchError, answered 422)."""
        return SearchRequest.of(self.k, mode=self.mode, date_from=self.date_from, date_to=self.date_to, where=where or None,
                                offset=self.offset, min_score=self.min_score)


class BatchSearchRequest(SearchOptions):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"queries": ["confronting global challenges", "desafíos globales"], "k": 5},
        {"queries": ["rivkin trial"], "k": 5, "mode": "hybrid", "date_from": "2003-03-01", "date_to": "2003-03-31"},
    ]})

    queries: list[QueryText] = Field(min_length=1, max_length=MAX_BATCH_QUERIES, description=f"1 to {MAX_BATCH_QUERIES} queries")
    where: Where = Field(default_factory=dict, description=f"Only documents whose metadata has these values, or meets these conditions "
                                                           f"({{\"year\": {{\"$gte\": 2003}}}}); at most {MAX_WHERE_PAIRS} fields")


class BatchSearchResponse(BaseModel):
    results: list[SearchResponse]


class HealthResponse(BaseModel):
    status: Literal["ok"]
    documents: int


class DamagedResponse(BaseModel):
    status: Literal["damaged"]
    message: str = Field(description="Why the collection cannot be searched now, in one line")


class ErrorResponse(BaseModel):
    """Every answer but a 200: what went wrong and what to do, in one line."""

    message: str
    detail: Any = Field(None, description="FastAPI's list of validation errors, for a 422 the validation made")


ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "The request cannot be answered as it is: the message says what to fix"},
    503: {"model": ErrorResponse, "description": "The collection's files vanished or are damaged; searches resume once it is whole"},
}
# uvicorn's HTTP parser refuses a request line of more than about 64 kB before the application sees it.
URL_TOO_LONG = {400: {"description": "The address is over about 64 kB (uvicorn refuses it, in plain text): send long queries and filters by POST",
                      "content": {"text/plain": {"schema": {"type": "string"}}}}}


BODY_EXAMPLE = '{"queries": ["flood warning"], "k": 10}'


class DocumentModel(BaseModel):
    id: int | str
    text: str
    date: str | None = Field(description="ISO 8601 date, or null when the corpus had none")
    meta: dict[str, Any] = Field(default_factory=dict)


class DocumentsResponse(BaseModel):
    documents: list[DocumentModel]
    count: int = Field(description="How many documents match, of which these are limit from offset on, in id order")
    limit: int
    offset: int


class SimilarResponse(BaseModel):
    id: int | str = Field(description="The document the hits are like (never among them)")
    hits: list[HitModel]
