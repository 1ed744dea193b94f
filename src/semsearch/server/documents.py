"""The HTTP API's document endpoints: one by id, a filtered page of them, and the ones like a stored one.

Like searches, they run on the search thread (``SearchBatcher.call``), the one that touches the
collection's SQLite connection and index, and answer a damaged collection with a 503.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse

from semsearch.collection import Collection
from semsearch.documents import MAX_DOCUMENT_ID, MAX_ID_LENGTH, Document, id_from_text
from semsearch.errors import SemsearchError
from semsearch.search.query import SearchRequest
from semsearch.server.batching import SearchBatcher
from semsearch.server.models import ERRORS, MAX_K, MAX_WHERE_PAIRS, Day, DocumentModel, DocumentsResponse, ErrorResponse, SimilarResponse
from semsearch.server.responses import _finite, hits_json, search_error, where_pairs

MAX_PAGE = 1_000
NOT_FOUND = {404: {"model": ErrorResponse, "description": "No document has this id"}}
DocumentId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH,
                                  description="A document's id: an integer, or a string in a collection of string ids")]
WhereParameter = Annotated[list[str], Query(max_length=MAX_WHERE_PAIRS, description="Metadata conditions, as for /search; repeatable")]


def document_json(document: Document) -> dict[str, Any]:
    return {"id": document.id, "text": document.text, "date": document.date.isoformat() if document.date else None,
            "meta": _finite(document.meta)}


def not_found(document_id: int | str) -> JSONResponse:
    return JSONResponse(status_code=404, content={"message": f"no document with id {document_id!r} in the collection"})


def add_document_routes(app: FastAPI, batcher: SearchBatcher) -> None:
    @app.get("/documents/{document_id}", response_model=DocumentModel, responses={**ERRORS, **NOT_FOUND}, summary="One document by its id")
    async def get_document(document_id: DocumentId) -> JSONResponse:
        try:
            wanted, found = await batcher.call(lambda collection: (wanted := id_from_text(document_id, collection.id_kind),
                                                                    collection.get([wanted])))
        except SemsearchError as error:
            return search_error(error)
        return JSONResponse(document_json(found[0])) if found else not_found(wanted)

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

        def like(collection: Collection) -> tuple[Any, list[Any] | None]:
            wanted = id_from_text(document_id, collection.id_kind)
            return wanted, (collection.similar(wanted, k, **filters) if collection.get([wanted]) else None)

        try:
            wanted, hits = await batcher.call(like)
        except SemsearchError as error:
            return search_error(error)
        return not_found(wanted) if hits is None else JSONResponse({"id": wanted, "hits": hits_json(hits)})
