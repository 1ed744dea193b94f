"""Writes over HTTP (issue 13): ``POST /documents`` upserts, ``DELETE /documents`` removes, both off unless
the server has a write token.

Who may write is decided before the body is read, by ``guards.WriteCheck``; here a request is only checked
for shape, and the collection's own ``upsert`` and ``remove`` decide what they can take (an id they cannot
hold is their one-line error, a 422). A write runs on the search thread (``SearchBatcher.call``), like a
search, so it never changes the store or the index under a search of this process; other worker processes
see it through their watch of manifest.json (``SearchBatcher.watch``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)

from semsearch.collection import Collection
from semsearch.documents import Document, meta_problem
from semsearch.errors import SemsearchError
from semsearch.server.batching import CollectionDamaged, SearchBatcher
from semsearch.server.models import ERRORS, MAX_BODY_BYTES, Day, ErrorResponse

logger = logging.getLogger("uvicorn.error")

# Documents per POST: each is embedded on the search thread while searches of this process wait, so a
# request stays about a second long (USE embeds some thousand headlines a second on one thread).
MAX_WRITE_DOCUMENTS = 1_000
# Ids per DELETE: removing costs little per id; the bound keeps one request's work and answer small.
MAX_REMOVE_IDS = 10_000
# A document's text: semsearch is for short texts, and the encoders read a few hundred words at most.
MAX_TEXT_CHARS = 10_000
# A string id (the collection decides whether it takes strings; today it takes integers only).
MAX_ID_CHARS = 1_024  # as documents.MAX_ID_LENGTH, with string ids
WRITE_PATH = "/documents"


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("the text is blank; a document needs words to be found by")
    return text


def _checked_meta(meta: dict[str, Any]) -> dict[str, Any]:
    if (problem := meta_problem(meta)) is not None:
        raise ValueError(problem)
    return meta


def _check_id(value: Any) -> int | str:
    """An id as JSON gives it, an integer or a string, neither converted: which ids the collection holds is its to say."""
    if isinstance(value, str):
        if not 1 <= len(value) <= MAX_ID_CHARS:
            raise ValueError(f"an id that is a string has 1 to {MAX_ID_CHARS:,} characters, got {len(value):,}")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("an id is an integer (or a string, where the collection takes them), not "
                     + {float: "a decimal number", bool: "true or false", type(None): "null"}.get(type(value), type(value).__name__))


DocumentIdValue = Annotated[int | str, PlainValidator(_check_id), WithJsonSchema(
    {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}]})]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_not_blank)]


class NewDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: DocumentIdValue = Field(description="The document's id: an integer from 0 to 2^63-1 (strings once the collection takes them); "
                                            "a document with the id of a stored one replaces it")
    text: Text = Field(description=f"The text searched, up to {MAX_TEXT_CHARS:,} characters")
    date: Day | None = Field(None, description="The document's day (YYYY-MM-DD), for date filters")
    meta: Annotated[dict[str, Any], AfterValidator(_checked_meta)] = Field(
        default_factory=dict, description="Metadata, for filters and to show with hits: a JSON object")

    def document(self) -> Document:
        return Document(id=self.id, text=self.text, date=self.date, meta=self.meta)  # type: ignore[arg-type]  # str ids: the collection decides


class UpsertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"documents": [{"id": 30001, "text": "flood warning for the north coast", "date": "2003-06-01", "meta": {"desk": "local"}}]},
    ]})

    documents: list[NewDocument] = Field(min_length=1, max_length=MAX_WRITE_DOCUMENTS,
                                         description=f"1 to {MAX_WRITE_DOCUMENTS:,} documents, each id once")


class RemoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ids": [30001, 17]}]})

    ids: list[DocumentIdValue] = Field(min_length=1, max_length=MAX_REMOVE_IDS, description=f"1 to {MAX_REMOVE_IDS:,} ids to remove")


class WriteResponse(BaseModel):
    """What a write did, as ``Collection.upsert`` and ``remove`` report it (their ``UpdateStats``)."""

    added: int = Field(description="Documents whose ids were new")
    replaced: int = Field(description="Stored documents replaced by one with the same id")
    removed: int
    not_found: list[int | str] = Field(description="Ids asked to be removed that no document has")
    count: int = Field(description="Documents in the collection now")


# Documents the bearer token in the OpenAPI schema (so /docs offers to send it); WriteCheck does the checking.
_BEARER = HTTPBearer(scheme_name="bearer", auto_error=False, description="The write token (--write-token), or the token (--token) to read")
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    401: {"model": ErrorResponse, "description": "No write token, or the wrong one (the answer carries WWW-Authenticate: Bearer)"},
    403: {"model": ErrorResponse, "description": "Writes are off: the message says how to start the server with a write token"},
    413: {"model": ErrorResponse, "description": f"The body is over {MAX_BODY_BYTES:,} bytes: send the documents in several requests"},
}


def add_write_routes(app: FastAPI, batcher: SearchBatcher) -> None:
    @app.post(WRITE_PATH, response_model=WriteResponse, responses=WRITE_ERRORS, dependencies=[Security(_BEARER)],
              summary="Add documents, or replace those with the same ids (needs the write token)")
    async def upsert_documents(body: UpsertRequest) -> JSONResponse:
        documents = [document.document() for document in body.documents]
        return await _write(batcher, lambda collection: collection.upsert(documents), f"{len(documents)} documents sent")

    @app.delete(WRITE_PATH, response_model=WriteResponse, responses=WRITE_ERRORS, dependencies=[Security(_BEARER)],
                summary="Remove documents by id (needs the write token)")
    async def remove_documents(body: RemoveRequest) -> JSONResponse:
        ids = list(body.ids)
        return await _write(batcher, lambda collection: collection.remove(ids), f"{len(ids)} ids to remove")  # type: ignore[arg-type]


async def _write(batcher: SearchBatcher, change: Callable[[Collection], Any], asked: str) -> JSONResponse:
    """``change(collection)`` on the search thread, answered with its UpdateStats; its errors as one line without paths."""
    try:
        stats = _stats(await batcher.call(change))
    except SemsearchError as error:
        status = 503 if isinstance(error, CollectionDamaged) else 422
        message = batcher.public_message(" ".join(str(error).splitlines()))
        logger.info("write refused (%s): %s", asked, message)
        return JSONResponse(status_code=status, content={"message": message})
    logger.info("write (%s): %s added, %s replaced, %s removed, %s not found; %s documents now", asked, stats["added"],
                stats["replaced"], stats["removed"], len(stats["not_found"]), f"{stats['count']:,}")
    return JSONResponse(stats)


def _stats(stats: Any) -> dict[str, Any]:
    """UpdateStats as the answer: ``count`` is the collection's size after the write."""
    not_found: Sequence[Any] = stats.not_found
    return {"added": stats.added, "replaced": stats.replaced, "removed": stats.removed, "not_found": list(not_found),
            "count": stats.count}
