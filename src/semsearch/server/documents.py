"""The HTTP API's document endpoints: one by id, a filtered page of them, and the ones like a stored one.

Like searches, they run on the search thread (``SearchBatcher.call``), the one that touches the
collection's SQLite connection and index, and answer a damaged collection with a 503.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse

from semsearch.collection import Collection
from semsearch.documents import MAX_DOCUMENT_ID, Document
from semsearch.errors import SemsearchError
from semsearch.search.query import SearchRequest
from semsearch.server.batching import SearchBatcher
from semsearch.server.models import ERRORS, MAX_K, MAX_WHERE_PAIRS, Day, DocumentModel, DocumentsResponse, ErrorResponse, SimilarResponse
from semsearch.server.responses import _finite, hits_json, search_error, where_pairs

MAX_PAGE = 1_000
NOT_FOUND = {404: {"model": ErrorResponse, "description": "No document has this id"}}
DocumentId = Annotated[int, Path(ge=0, le=MAX_DOCUMENT_ID, description="A document's id")]
WhereParameter = Annotated[list[str], Query(max_length=MAX_WHERE_PAIRS, description="Metadata conditions, as for /search; repeatable")]


def document_json(document: Document) -> dict[str, Any]:
    return {"id": document.id, "text": document.text, "date": document.date.isoformat() if document.date else None,
            "meta": _finite(document.meta)}


def not_found(document_id: int) -> JSONResponse:
    return JSONResponse(status_code=404, content={"message": f"no document with id {document_id} in the collection"})


def add_document_routes(app: FastAPI, batcher: SearchBatcher) -> None:
    @app.get("/documents/{document_id}", response_model=DocumentModel, responses={**ERRORS, **NOT_FOUND}, summary="One document by its id")
    async def get_document(document_id: DocumentId) -> JSONResponse:
        try:
            found = await batcher.call(lambda collection: collection.get([document_id]))
        except SemsearchError as error:
            return search_error(error)
        return JSONResponse(document_json(found[0])) if found else not_found(document_id)

    @app.get("/documents", response_model=DocumentsResponse, responses=ERRORS, summary="The documents, filtered, a page at a time")
    async def list_documents(
        limit: Annotated[int, Query(ge=0, le=MAX_PAGE)] = 20, offset: Annotated[int, Query(ge=0, le=MAX_DOCUMENT_ID)] = 0,
        date_from: Day | None = None, date_to: Day | None = None, where: WhereParameter = [],  # noqa: B006
    ) -> JSONResponse:
        filters = {"date_from": date_from, "date_to": date_to, "where": where_pairs(where) or None}

        def page(collection: Collection) -> dict[str, Any]:
            documents = [document_json(document) for document in collection.iter_documents(**filters, limit=limit, offset=offset)]
            return {"documents": documents, "count": collection.count(**filters), "limit": limit, "offset": offset}

        try:
            return JSONResponse(await batcher.call(page))
        except SemsearchError as error:
            return search_error(error)

    @app.get("/similar/{document_id}", response_model=SimilarResponse, responses={**ERRORS, **NOT_FOUND},
             summary="The k documents nearest in meaning to a stored one, itself left out")
    async def similar(
        document_id: DocumentId, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        date_from: Day | None = None, date_to: Day | None = None, where: WhereParameter = [],  # noqa: B006
    ) -> JSONResponse:
        filters = {"date_from": date_from, "date_to": date_to, "where": where_pairs(where) or None}
        try:
            SearchRequest.of(k, **filters)  # a bad range or filter is a 422 before the search thread
        except SemsearchError as error:
            return search_error(error)

        def like(collection: Collection) -> list[Any] | None:
            if not collection.get([document_id]):
                return None
            return collection.similar(document_id, k, **filters)

        try:
            hits = await batcher.call(like)
        except SemsearchError as error:
            return search_error(error)
        return not_found(document_id) if hits is None else JSONResponse({"id": document_id, "hits": hits_json(hits)})
