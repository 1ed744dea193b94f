"""The HTTP API and the search page: a thin FastAPI layer over Collection.

Every request a client can get wrong is answered 422 with a one-line ``message`` saying what
to fix (beside FastAPI's usual ``detail`` list), so bad input never reaches the search
thread and never shows up as a server error.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from semsearch import __version__
from semsearch.collection import Collection
from semsearch.encoders import Encoder, RecordedEncoder
from semsearch.errors import SemsearchError
from semsearch.search.query import SearchRequest
from semsearch.server.batching import SearchBatcher
from semsearch.server.documents import add_document_routes
from semsearch.server.guards import (
    WRITE_TOKEN_VARIABLE,
    BodySizeLimit,
    HostCheck,
    RedactToken,
    TokenCheck,
    WriteCheck,
    check_token,
    is_open_path,
)
from semsearch.server.models import (
    ERRORS,
    MAX_HITS_PER_REQUEST,
    MAX_QUERY_CHARS,
    MAX_WHERE_FIELD_CHARS,
    MAX_WHERE_PAIRS,
    MAX_WHERE_VALUE_CHARS,
    URL_TOO_LONG,
    BatchSearchRequest,
    BatchSearchResponse,
    DamagedResponse,
    HealthResponse,
    SearchOptions,
    SearchResponse,
)
from semsearch.server.responses import (
    blank_query_error,
    hits_json,
    http_error_handler,
    public_info,
    search_error,
    too_much_work_error,
    validation_error_handler,
    where_pairs,
)
from semsearch.server.writes import add_write_routes

# The environment variable through which `semsearch serve --workers N` tells each worker
# process which collection to open (uvicorn starts workers from an import string).
COLLECTION_VARIABLE = "SEMSEARCH_SERVE_COLLECTION"
# And the encoder the user named, or their trust in the collection's own (see Collection.open).
ENCODER_VARIABLE = "SEMSEARCH_SERVE_ENCODER"
TRUST_VARIABLE = "SEMSEARCH_SERVE_TRUST_ENCODER"
# ... and which Host header values to answer (a JSON list, as `guards.served_hosts` makes it).
HOSTS_VARIABLE = "SEMSEARCH_SERVE_HOSTS"
# The bearer token every request but /health and the page's files must carry, when set (`--token`).
TOKEN_VARIABLE = "SEMSEARCH_TOKEN"
# The token POST and DELETE /documents must carry; writes are off without one (`--write-token`).
WRITE_VARIABLE = WRITE_TOKEN_VARIABLE
STATIC = Path(__file__).resolve().parent / "static"


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


def create_app(collection: Collection, *, close_collection: bool = False, allowed_hosts: Sequence[str] | None = None,
               token: str | None = None, write_token: str | None = None) -> FastAPI:
    """The application serving ``collection``. The encoder is warmed before the server listens.

    ``allowed_hosts``: the Host header values to answer (``guards.served_hosts``), any other is a
    421; None answers every Host, for an application embedded elsewhere. ``token``: when set,
    every request but ``/health``, the page and the documentation must carry
    ``Authorization: Bearer TOKEN`` (401 otherwise). ``write_token``: when set, ``POST`` and
    ``DELETE /documents`` change the collection for a request carrying it (401 otherwise); when
    not, they are a 403 that says how to turn writes on.
    """
    write_token = check_token(write_token) if write_token is not None else None
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
    app.add_middleware(WriteCheck, write_token=write_token)  # outside BodySizeLimit: who may write, before any body is read
    if token is not None:
        app.add_middleware(TokenCheck, token=check_token(token), also=[write_token] if write_token else [])
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

    add_document_routes(app, batcher)
    add_write_routes(app, batcher)

    @app.get("/info", summary="What the collection holds and what built it")
    async def info() -> dict[str, Any]:
        await batcher.check_for_update()
        return public_info(await batcher.facts(Collection.info))

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
    collection = Collection.open(path, verify=False, encoder=os.environ.get(ENCODER_VARIABLE) or None,
                                 trust_encoder=os.environ.get(TRUST_VARIABLE) == "1")
    return create_app(collection, close_collection=True, allowed_hosts=json.loads(hosts) if hosts else None,
                      token=os.environ.get(TOKEN_VARIABLE) or None, write_token=os.environ.get(WRITE_VARIABLE) or None)
