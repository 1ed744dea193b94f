"""Getting at the documents of an open collection: by id, counted, listed, exported, and more like one.

A mixin of ``Collection`` (which provides ``store``, ``vectors`` and ``search_request``), kept
apart because it is the read side that is not a query: what Chroma calls ``get`` and
``count``, LanceDB ``to_pandas``, llm ``similar``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from semsearch.documents import Document, DocumentId, Hit
from semsearch.errors import SemsearchError
from semsearch.filters import Filter
from semsearch.search.query import SearchRequest
from semsearch.storage.export import export_documents

if TYPE_CHECKING:
    from semsearch.search.segment_view import SegmentedDocuments

DateBound = datetime.date | str | None


class DocumentAccess:
    store: SegmentedDocuments

    def vectors_of_ids(self, ids: list[DocumentId]) -> np.ndarray:
        """The stored vectors of documents, by their ids (each must be in the collection)."""
        located = self.store.live_keys(ids)
        missing = [document_id for document_id in ids if document_id not in located]
        if missing:
            raise SemsearchError(f"no document with id {missing[0]!r} in the collection")
        rows = [segment.vectors(np.array([key], dtype=np.int64))[0] for segment, key in (located[i] for i in ids)]
        return np.asarray(rows, dtype=np.float32).reshape(len(ids), -1)

    def search_request(self, queries: list[str], request: SearchRequest, query_vectors: np.ndarray | None = None) -> list[list[Hit]]:
        raise NotImplementedError

    def _filter(self, date_from: DateBound, date_to: DateBound, where: Mapping[str, Any] | None) -> Filter | None:
        wanted = Filter.of(date_from, date_to, where)
        if wanted is not None:
            self.store.check_fields(wanted)
        return wanted

    def get(self, ids: Iterable[DocumentId]) -> list[Document]:
        """The documents with these ids, in the order asked; ids not in the collection are left out."""
        ids = list(ids)
        found = self.store.by_ids(ids)
        return [found[document_id] for document_id in ids if document_id in found]

    def count(self, *, date_from: DateBound = None, date_to: DateBound = None, where: Mapping[str, Any] | None = None) -> int:
        """How many documents match the filter (all of them without one)."""
        wanted = self._filter(date_from, date_to, where)
        return len(self.store) if wanted is None else self.store.count(wanted)

    def iter_documents(self, *, date_from: DateBound = None, date_to: DateBound = None, where: Mapping[str, Any] | None = None,
                       limit: int | None = None, offset: int = 0) -> Iterator[Document]:
        """The matching documents in the order they were added, read a page at a time (bounded memory however many)."""
        if limit is not None and limit < 0 or offset < 0:
            raise SemsearchError(f"limit and offset cannot be negative, got limit={limit}, offset={offset}")
        return self.store.documents(self._filter(date_from, date_to, where), limit=limit, offset=offset)

    def export(self, destination: str | Path | IO[str], format: str = "jsonl", *, vectors: bool = False, date_from: DateBound = None,
               date_to: DateBound = None, where: Mapping[str, Any] | None = None, limit: int | None = None) -> int:
        """Write the matching documents (and with ``vectors`` their vectors) as jsonl, csv or parquet; the count written."""
        wanted = self._filter(date_from, date_to, where)
        target = Path(destination) if isinstance(destination, (str, Path)) else destination
        fields = self.store.metadata_fields(wanted) if format != "jsonl" else []
        documents = self.store.documents(wanted, limit=limit)
        return export_documents(target, format, documents, fields, self.vectors_of_ids if vectors else None)

    def similar(self, document_id: DocumentId, k: int = 10, *, date_from: DateBound = None, date_to: DateBound = None,
                where: Mapping[str, Any] | None = None, **search_params: Any) -> list[Hit]:
        """The k documents nearest in meaning to a stored one, itself left out ("more like this")."""
        vector = self.vectors_of_ids([document_id])
        request = SearchRequest.of(k + 1, date_from=date_from, date_to=date_to, where=where, **search_params)
        [hits] = self.search_request([f"similar to {document_id}"], request, query_vectors=vector)
        return [hit for hit in hits if hit.id != document_id][:k]
