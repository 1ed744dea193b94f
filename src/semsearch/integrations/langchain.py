"""A semsearch collection as a LangChain ``VectorStore`` (extra ``langchain``), for RAG applications.

The application's ``Embeddings`` become the collection's encoder and LangChain's string ids
are kept in metadata and hashed to integer ids (``langchain_embeddings``). A collection cannot
be built empty, so the store creates it on the first add (from a one-line seed, removed at
once), in a temporary directory unless ``path`` names one. ``filter`` is a semsearch filter in
Chroma's form (``semsearch.filters``). Every change is one update of the collection, which
rewrites its files: add documents in batches, not one at a time.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.collection import Collection
from semsearch.documents import Document, Hit, meta_problem
from semsearch.errors import SemsearchError
from semsearch.filters import FilterError
from semsearch.search.query import SearchRequest
from semsearch.storage.layout import is_collection, read_manifest
from semsearch.integrations.langchain_embeddings import ID_KEY, LangChainEncoder, SemsearchEmbeddings, document_id, langchain_document

from langchain_core.documents import Document as LangChainDocument  # noqa: E402, I001
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.runnables.config import run_in_executor  # noqa: E402
from langchain_core.vectorstores import VectorStore  # noqa: E402
from langchain_core.vectorstores.utils import maximal_marginal_relevance  # noqa: E402

__all__ = ["ID_KEY", "LangChainEncoder", "SemsearchEmbeddings", "SemsearchVectorStore", "document_id"]

# The seed a new collection is built from and loses at once: id 0, which no hashed id takes.
SEED_ID = 0
SEED_TEXT = "semsearch langchain seed"
# The text a search by vector is asked under (the collection wants one per query; only keyword search reads it).
VECTOR_QUERY = "a query given as a vector"
COLLECTION_NAME = "store.semsearch"


class SemsearchVectorStore(VectorStore):
    """A semsearch collection behind LangChain's ``VectorStore`` interface.

    ``path``: the collection directory, opened if it holds one and created on the first add if not;
    by default a temporary directory, deleted by ``close``. ``backend`` is ``exact`` by default:
    exact cosine scores over the small stores a RAG application keeps; pass ``usearch`` (with
    ``backend_params``) for large ones. ``model`` names the embeddings in the manifest when the
    class and its ``model`` attribute do not tell one model from another.
    """

    def __init__(self, embedding: Embeddings, *, path: str | Path | None = None, backend: str = "exact",
                 backend_params: dict[str, Any] | None = None, model: str | None = None) -> None:
        self.embedding = embedding
        self.encoder = LangChainEncoder(embedding, model=model)
        self.backend = backend
        self.backend_params = backend_params
        self._lock = threading.RLock()  # the async methods run the sync ones on executor threads
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if path is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="semsearch-langchain-")
            self.path = Path(self._temporary.name) / COLLECTION_NAME
        else:
            self.path = Path(path)
        self._collection: Collection | None = None
        self._closed = False
        if is_collection(self.path):
            self.encoder.dim = int(read_manifest(self.path)["encoder"]["dim"])  # then checked against the first vectors
            self._collection = Collection.open(self.path, encoder=self.encoder)

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    @property
    def collection(self) -> Collection | None:
        """The semsearch collection, for what LangChain does not ask (``info``, keyword search); None until the first add."""
        return self._collection

    # -- adding --

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store texts; a text whose id is stored already replaces it. Returns the ids (new UUIDs where none was given)."""
        texts = list(texts)
        ids_, documents = self._documents(texts, metadatas, ids)
        if documents:
            self._write(documents, self.encoder.embed_documents([document.text for document in documents]))
        return ids_

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """As ``add_texts``, with the embeddings' own async call; the collection is written on an executor thread."""
        texts = list(texts)
        ids_, documents = self._documents(texts, metadatas, ids)
        if documents:
            vectors = await self.encoder.aembed_documents([document.text for document in documents])
            await run_in_executor(None, self._write, documents, vectors)
        return ids_

    def _documents(self, texts: list[str], metadatas: list[dict[str, Any]] | None,
                   ids: list[str | None] | None) -> tuple[list[str], list[Document]]:
        """The ids to return and a semsearch Document per text, each row checked before anything is embedded."""
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(metadatas)} metadatas")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
        given = [str(id_) if id_ is not None else str(uuid.uuid4()) for id_ in (ids or [None] * len(texts))]
        documents = []
        owners: dict[int, str] = {}
        for position, (text, langchain_id) in enumerate(zip(texts, given)):
            if not isinstance(text, str):
                raise TypeError(f"text {position}: expected a string, got {type(text).__name__}")
            meta = dict(metadatas[position] if metadatas is not None and metadatas[position] is not None else {})
            if ID_KEY in meta:
                raise ValueError(f"text {position}: the metadata key {ID_KEY!r} is the store's own (it holds the document's id)")
            meta[ID_KEY] = langchain_id
            if (problem := meta_problem(meta)) is not None:
                raise ValueError(f"text {position}: {problem}")
            number = document_id(langchain_id)
            if owners.setdefault(number, langchain_id) != langchain_id:
                raise ValueError(f"ids {owners[number]!r} and {langchain_id!r} hash to the same document id; use another id")
            documents.append(Document(id=number, text=text, meta=meta))
        # The same id twice in one call: the last one wins, as two calls would have it.
        latest = {document.id: document for document in documents}
        return given, [document for document in documents if latest[document.id] is document]

    def _write(self, documents: list[Document], vectors: np.ndarray) -> None:
        """Upsert ``documents`` (a new collection first, if there is none) with their vectors, one row each."""
        prepared = {document.text: vector for document, vector in zip(documents, vectors, strict=True)}
        with self._lock, self.encoder.prepared(prepared):
            if self._closed:
                raise SemsearchError(f"{self.path}: this store is closed")
            collection = self._collection or self._create()
            stored = {document.id: document for document in collection.get(document.id for document in documents)}
            for document in documents:
                other = stored.get(document.id)
                if other is not None and other.meta.get(ID_KEY) != document.meta[ID_KEY]:
                    raise ValueError(f"id {document.meta[ID_KEY]!r} hashes to the document id of the stored "
                                     f"{other.meta.get(ID_KEY)!r}; use another id")
            collection.upsert(documents, rebuild=not collection.index.supports_updates)

    def _create(self) -> Collection:
        """An empty collection at ``self.path``: built from a seed whose vector is given, which is then removed."""
        seed = np.zeros(self.encoder.dim, dtype=np.float32)
        seed[0] = 1.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="semsearch-langchain-seed-") as directory:
            corpus = Path(directory) / "langchain-seed.jsonl"
            corpus.write_text(f'{{"id": {SEED_ID}, "text": "{SEED_TEXT}"}}\n', encoding="utf-8")
            with self.encoder.prepared({SEED_TEXT: seed}):
                collection = Collection.build(corpus, self.path, encoder=self.encoder, backend=self.backend,
                                              backend_params=self.backend_params, parallel="serial")
        collection.remove([SEED_ID], rebuild=not collection.index.supports_updates)
        self._collection = collection
        return collection

    # -- reading and deleting --

    def _stored(self, ids: Sequence[str]) -> list[tuple[str, int]]:
        """The given ids that are stored, once each, in the order given, with their document ids."""
        collection = self._collection
        if collection is None:
            return []
        wanted = list(dict.fromkeys(str(id_) for id_ in ids))
        numbers = {id_: document_id(id_) for id_ in wanted}
        stored = {document.id: document for document in collection.get(numbers.values())}
        return [(id_, numbers[id_]) for id_ in wanted if (found := stored.get(numbers[id_])) is not None and found.meta.get(ID_KEY) == id_]

    def get_by_ids(self, ids: Sequence[str], /) -> list[LangChainDocument]:
        """The stored documents among ``ids``, in the order asked, each once; missing ids are left out."""
        with self._lock:
            found = self._stored(ids)
            if not found:
                return []
            return [langchain_document(document) for document in self._collection.get(number for _, number in found)]  # type: ignore[union-attr]

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete these ids (None: every document); ids not stored are ignored."""
        with self._lock:
            collection = self._collection
            if collection is None:
                return True
            if ids is None:
                numbers = [document.id for document in collection.iter_documents()]
            else:
                numbers = [number for _, number in self._stored(ids)]
            if numbers:
                collection.remove(numbers, rebuild=not collection.index.supports_updates)
            return True

    # -- searching --

    def similarity_search(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,  # noqa: A002
                          **kwargs: Any) -> list[LangChainDocument]:
        """The k documents nearest to ``query``, best first, among those whose metadata has every ``filter`` value.

        ``mode="hybrid"`` or ``"keyword"`` use semsearch's keyword index as well or instead
        (scores are then fused ranks or BM25, not cosines); other keywords are the backend's search parameters.
        """
        return [document for document, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,  # noqa: A002
                                     **kwargs: Any) -> list[tuple[LangChainDocument, float]]:
        """As ``similarity_search``, with each document's cosine similarity to the query (1 is the same direction)."""
        mode = kwargs.get("mode", "semantic")
        vector = None if mode == "keyword" or self._is_empty() else self.encoder.embed_query(query)
        return self._scored(self._hits(query, vector, k, filter, **kwargs))

    async def asimilarity_search(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,  # noqa: A002
                                 **kwargs: Any) -> list[LangChainDocument]:
        return [document for document, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,  # noqa: A002
                                            **kwargs: Any) -> list[tuple[LangChainDocument, float]]:
        """As ``similarity_search_with_score``, with the embeddings' own async call; the search runs on an executor thread."""
        mode = kwargs.get("mode", "semantic")
        vector = None if mode == "keyword" or self._is_empty() else await self.encoder.aembed_query(query)
        hits = await run_in_executor(None, self._hits, query, vector, k, filter, **kwargs)
        return self._scored(hits)

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: dict[str, Any] | None = None,  # noqa: A002
                                    **kwargs: Any) -> list[LangChainDocument]:
        return [document for document, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def similarity_search_with_score_by_vector(self, embedding: list[float], k: int = 4,
                                               filter: dict[str, Any] | None = None,  # noqa: A002
                                               **kwargs: Any) -> list[tuple[LangChainDocument, float]]:
        """The k documents nearest to a vector made with the store's embeddings (by meaning only), with their cosines."""
        if kwargs.get("mode", "semantic") != "semantic":
            raise ValueError("a search by vector is by meaning only (mode='semantic')")
        return self._scored(self._hits(VECTOR_QUERY, self.encoder.rows([embedding], 1)[0], k, filter, **kwargs))

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: dict[str, Any] | None = None, **kwargs: Any) -> list[LangChainDocument]:  # noqa: A002
        """k documents near the query and unlike each other, chosen among the ``fetch_k`` nearest (LangChain's MMR)."""
        if self._is_empty():
            return []
        return self.max_marginal_relevance_search_by_vector(self.encoder.embed_query(query).tolist(), k, fetch_k, lambda_mult,
                                                            filter, **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: dict[str, Any] | None = None,  # noqa: A002
                                                **kwargs: Any) -> list[LangChainDocument]:
        query = self.encoder.rows([embedding], 1)[0]
        with self._lock:
            hits = self._hits(VECTOR_QUERY, query, max(fetch_k, k), filter, **kwargs)
            if not hits:
                return []
            vectors = np.asarray(self._collection.vectors_of_ids([hit.id for hit in hits]),  # type: ignore[union-attr]
                                 dtype=np.float32)
        chosen = maximal_marginal_relevance(query, vectors, lambda_mult=lambda_mult, k=k)
        return [langchain_document(hits[position]) for position in chosen]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance for ``similarity_score_threshold`` retrievers: the cosine itself, so a threshold of 0.6
        means what it does in ``semsearch search``, with opposite directions (negative cosines) as 0."""
        return lambda score: min(1.0, max(0.0, score))

    def _is_empty(self) -> bool:
        """Nothing stored: a search answers [] without calling the embeddings (an empty store costs no API call)."""
        with self._lock:
            return self._collection is None or len(self._collection) == 0

    def _hits(self, query: str, vector: np.ndarray | None, k: int, filter: dict[str, Any] | None,  # noqa: A002
              mode: str = "semantic", **search_params: Any) -> list[Hit]:
        """The collection's hits for ``query``, searched with ``vector`` (made with ``embed_query``, or the caller's).

        No vector for a search by meaning means the store was empty when the caller looked: no hits.
        """
        if filter is not None and not isinstance(filter, Mapping):
            raise TypeError(f"filter: expected a dict of metadata conditions ({{'field': value}}), got {type(filter).__name__}")
        where = dict(filter) if filter else None
        request = SearchRequest.of(max(k, 1), mode=mode, where=where, **search_params)  # a bad filter is an error, even on an empty store
        if k < 1 or (vector is None and mode != "keyword"):
            return []
        with self._lock:
            collection = self._collection
            if collection is None or len(collection) == 0:
                return []
            # The collection wants a text per query even when its vector is given; only keyword search reads it.
            text = query if query.strip() or vector is None else VECTOR_QUERY
            vectors = None if vector is None else vector[np.newaxis, :]
            try:
                return collection.search_request([text], request, query_vectors=vectors)[0]
            except FilterError:
                # The filter was checked above, so this is the collection refusing a field that no
                # document has (a typo, on the command line); to LangChain that is a filter nothing matches.
                # (Strictly, {"missing": {"$ne": 1}} matches every document; that case gives none here.)
                return []

    @staticmethod
    def _scored(hits: list[Hit]) -> list[tuple[LangChainDocument, float]]:
        return [(langchain_document(hit), hit.score) for hit in hits]

    # -- making and closing --

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> SemsearchVectorStore:
        """A store holding ``texts``; ``kwargs`` are the constructor's (``path``, ``backend``, ``backend_params``, ``model``)."""
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def close(self) -> None:
        """Close the collection, and delete it if it lives in the store's temporary directory."""
        with self._lock:
            self._closed = True
            if self._collection is not None:
                self._collection.close()
                self._collection = None
            if self._temporary is not None:
                self._temporary.cleanup()
                self._temporary = None

    def __enter__(self) -> SemsearchVectorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
