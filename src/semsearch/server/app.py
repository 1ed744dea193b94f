"""The HTTP API and the search page: a thin FastAPI layer over Collection.

Every request a client can get wrong is answered 422 with a one-line ``message`` saying what
to fix (beside FastAPI's usual ``detail`` list), so bad input never reaches the search
thread and never shows up as a server error.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, StringConstraints, TypeAdapter, ValidationError, WithJsonSchema
from swagger_ui_bundle import swagger_ui_path

from semsearch import __version__
from semsearch.collection import Collection
from semsearch.documents import Hit
from semsearch.encoders import Encoder, RecordedEncoder
from semsearch.errors import SemsearchError
from semsearch.filters import COMPARISONS, MEMBERSHIP, OPERATORS, parse_where
from semsearch.search.query import MODES, SearchRequest
from semsearch.server.batching import CollectionDamaged, SearchBatcher
from semsearch.server.guards import HostCheck, RedactToken, TokenCheck, check_token, is_open_path

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
# The environment variable through which `semsearch serve --workers N` tells each worker
# process which collection to open (uvicorn starts workers from an import string).
COLLECTION_VARIABLE = "SEMSEARCH_SERVE_COLLECTION"
# ... and which Host header values to answer (a JSON list, as `guards.served_hosts` makes it).
HOSTS_VARIABLE = "SEMSEARCH_SERVE_HOSTS"
# The bearer token every request but /health and the page's files must carry, when set (`--token`).
TOKEN_VARIABLE = "SEMSEARCH_TOKEN"
STATIC = Path(__file__).resolve().parent / "static"

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
    id: int
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

    def request(self, where: dict[str, Any]) -> SearchRequest:
        """The one value the search goes on with (a bad filter is a SemsearchError, answered 422)."""
        return SearchRequest.of(self.k, mode=self.mode, date_from=self.date_from, date_to=self.date_to, where=where or None)


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
    """``Collection.info()`` without the server's paths, which are no client's business: no ``path``; the
    corpus (``source``) and a model given by path (``encoder.argument``) by their last component only."""
    facts = {key: value for key, value in facts.items() if key != "path"}
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


def use_one_thread(encoder: Encoder) -> None:
    """Encode with one BLAS thread per server process.

    Concurrency comes from requests (batched) and from worker processes, not from BLAS: on a
    busy 2-core machine a second BLAS thread made one-query encodes sixty times slower. Run
    ``--workers`` up to the number of cores to use them all.
    """
    if isinstance(encoder, RecordedEncoder):  # the collection's own, made now rather than at the first query
        encoder = encoder.inner
    if hasattr(encoder, "threads"):
        encoder.threads = 1


class BodySizeLimit:
    """ASGI middleware: a request body over ``MAX_BODY_BYTES`` is answered 413 before it is read whole.

    Without it, a client could make the server hold and parse any amount of JSON. The body
    (small, by then) is read here and handed on to the application as one message.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict[str, Any], send: Any) -> None:
        message = (f"the request body is over {self.limit:,} bytes; "
                   f"send at most {MAX_BATCH_QUERIES} queries of at most {MAX_QUERY_CHARS:,} characters")
        await JSONResponse(status_code=413, content={"message": message})(scope, _disconnected, send)


async def _disconnected() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def create_app(collection: Collection, *, close_collection: bool = False, allowed_hosts: Sequence[str] | None = None,
               token: str | None = None) -> FastAPI:
    """The application serving ``collection``. The encoder is warmed before the server listens.

    ``allowed_hosts``: the Host header values to answer (``guards.served_hosts``), any other is a
    421; None answers every Host, for an application embedded elsewhere. ``token``: when set,
    every request but ``/health``, the page and the documentation must carry
    ``Authorization: Bearer TOKEN`` (401 otherwise).
    """
    use_one_thread(collection.encoder)
    batcher = SearchBatcher(collection)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        # Loading the encoder's model takes about a second: pay it now, not on the first query.
        batcher.search_now(["warm up"], SearchRequest(k=1))
        try:
            yield
        finally:
            await batcher.stop()
            if close_collection:
                batcher.collection.close()  # the one open now (a repair reopens it)

    app = FastAPI(
        title="semsearch",
        version=__version__,
        summary="Semantic search over short texts: the headlines nearest in meaning to a query.",
        lifespan=lifespan,
        docs_url=None,  # served below from the package swagger-ui-bundle-v2, not from a CDN: works offline
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, validation_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error_handler)  # type: ignore[arg-type]
    app.add_middleware(BodySizeLimit)
    if token is not None:
        app.add_middleware(TokenCheck, token=check_token(token))
        _document_token(app)
        access_log = logging.getLogger("uvicorn.access")
        if not any(isinstance(existing, RedactToken) for existing in access_log.filters):
            access_log.addFilter(RedactToken())  # the page's address may carry ?token=
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=list(allowed_hosts))  # added last, so it runs first
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        return get_swagger_ui_html(openapi_url="openapi.json", title="semsearch API", swagger_js_url="docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="docs-assets/swagger-ui.css", swagger_favicon_url="docs-assets/favicon-32x32.png")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/search", response_model=SearchResponse, responses={**ERRORS, **URL_TOO_LONG}, summary="The k documents nearest in meaning to q")
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="The query text", examples=["confronting global challenges"])],
        options: Annotated[SearchOptions, Query()],
        where: Annotated[list[str], Query(
            max_length=MAX_WHERE_PAIRS,
            description=f"FIELD=VALUE: only documents whose metadata FIELD is VALUE; repeatable, at most {MAX_WHERE_PAIRS} times, "
                        f"FIELD up to {MAX_WHERE_FIELD_CHARS} and VALUE up to {MAX_WHERE_VALUE_CHARS:,} characters")] = [],  # noqa: B006
    ) -> JSONResponse:
        if not q.strip():
            raise blank_query_error(("query", "q"))
        pairs = where_pairs(where)
        try:
            [hits] = await batcher.search([q], options.request(pairs))
        except SemsearchError as error:
            return search_error(error)
        return JSONResponse({"query": q, "hits": hits_json(hits)})

    @app.post("/search", response_model=BatchSearchResponse, responses=ERRORS, summary="Several queries in one request")
    async def search_batch(body: BatchSearchRequest) -> JSONResponse:
        for position, text in enumerate(body.queries):
            if not text.strip():
                raise blank_query_error(("body", "queries", position))
        if len(body.queries) * body.k > MAX_HITS_PER_REQUEST:
            raise too_much_work_error(len(body.queries), body.k)
        try:
            results = await batcher.search(body.queries, body.request(body.where))
        except SemsearchError as error:
            return search_error(error)
        return JSONResponse({"results": [{"query": text, "hits": hits_json(hits)} for text, hits in zip(body.queries, results)]})

    @app.get("/info", summary="What the collection holds and what built it")
    async def info() -> dict[str, Any]:
        await batcher.check_for_update()
        return public_info(batcher.collection.info())

    @app.get("/health", response_model=HealthResponse, summary="Whether the server is up and its collection can be searched",
             responses={503: {"model": DamagedResponse, "description": "The collection's files vanished or are damaged"}})
    async def health() -> Any:
        await batcher.check_for_update()
        if batcher.damage is not None:
            return JSONResponse(status_code=503, content={"status": "damaged", "message": batcher.damage})
        return HealthResponse(status="ok", documents=len(batcher.collection))

    return app


def _document_token(app: FastAPI) -> None:
    """The OpenAPI schema says which operations need the bearer token, so /docs offers to send it."""
    plain_schema = app.openapi

    def schema_with_token() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain_schema()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
            refused = {"description": "No token, or the wrong one (the answer carries WWW-Authenticate: Bearer)",
                       "content": {"application/json": {"schema": {"type": "object", "required": ["message"],
                                                                   "properties": {"message": {"type": "string"}}}}}}
            for path, operations in schema.get("paths", {}).items():
                if not is_open_path(path):
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
                        operation.setdefault("responses", {})["401"] = refused
        return app.openapi_schema

    app.openapi = schema_with_token  # type: ignore[method-assign]


def app_from_environment() -> FastAPI:
    """The application factory each worker of `semsearch serve --workers N` calls.

    Each worker opens the collection itself; the index file is memory-mapped read-only, so the
    operating system keeps one copy of it in memory however many workers there are.
    """
    path = os.environ.get(COLLECTION_VARIABLE)
    if not path:
        raise SemsearchError(f"set {COLLECTION_VARIABLE} to the collection to serve")
    hosts = os.environ.get(HOSTS_VARIABLE)
    return create_app(Collection.open(path, verify=False), close_collection=True, allowed_hosts=json.loads(hosts) if hosts else None,
                      token=os.environ.get(TOKEN_VARIABLE) or None)
