"""Between LangChain and semsearch: its ``Embeddings`` as a semsearch encoder and back, its ids and documents.

- ``LangChainEncoder``: documents go through ``embed_documents``, queries through ``embed_query``
  (the two differ for models that prefix queries), rows made unit length as every semsearch
  encoder's are.
- A LangChain id is kept in the document's metadata under ``ID_KEY`` (and removed from the
  metadata handed back); the document's integer id is a 63-bit hash of it, so a collection
  reopened by another process maps ids the same way with no table to keep in step, and
  ``get_by_ids``/``delete`` are primary-key lookups. A hash collision is refused, not overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from semsearch.collection import resolve_encoder
from semsearch.documents import MAX_DOCUMENT_ID, Document, Hit
from semsearch.encoders import DEFAULT_ENCODER, format_spec
from semsearch.encoders.base import Encoder, normalise
from semsearch.errors import import_optional

import_optional("langchain_core", "langchain-core", "langchain", "semsearch.integrations.langchain")

from langchain_core.documents import Document as LangChainDocument  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402

__all__ = ["ID_KEY", "LangChainEncoder", "SemsearchEmbeddings", "describe_embeddings", "document_id", "langchain_document"]

# The metadata key that holds a document's LangChain id; never shown in the metadata returned.
ID_KEY = "_langchain_id"

def document_id(langchain_id: str) -> int:
    """The collection's integer id for a LangChain id: stable across processes and machines, from 1 to 2^63 - 1."""
    digest = hashlib.blake2b(langchain_id.encode("utf-8", "surrogatepass"), digest_size=8, person=b"semsearch-lc-id").digest()
    return int.from_bytes(digest, "big") % MAX_DOCUMENT_ID + 1


def describe_embeddings(embeddings: Embeddings) -> str:
    """What the manifest records as the encoder's argument: the class, and the model when it names one.

    Opening a stored collection with another embeddings class (or model) is then refused by
    semsearch's encoder check, instead of searching vectors of one model with queries of another.
    """
    kind = type(embeddings)
    described = f"{kind.__module__}.{kind.__qualname__}"
    for attribute in ("model", "model_name", "model_id"):
        value = getattr(embeddings, attribute, None)
        if isinstance(value, str) and value:
            return f"{described}:{value}"
    return described


class LangChainEncoder(Encoder):
    """A LangChain ``Embeddings`` as a semsearch encoder: the model the application chose embeds the collection.

    ``dim`` is learnt from the first vectors unless given. ``prepared`` hands over vectors computed
    already (an add embeds its texts once, before the collection is written, which also tells the
    dimension a new collection needs), so the collection's own ``encode`` calls do not embed them again.
    Queries go through ``embed_query`` and reach the collection as vectors.
    """

    name = "langchain"
    version = "1"
    argument_help = "EMBEDDINGS"
    requires = ("langchain_core",)
    extra = "langchain"

    def __init__(self, embeddings: Embeddings, *, model: str | None = None, dim: int | None = None) -> None:
        self.embeddings = embeddings
        self.argument = model or describe_embeddings(embeddings)
        self._dim = dim
        self._prepared: dict[str, np.ndarray] = {}

    @property  # type: ignore[override]
    def dim(self) -> int:
        if self._dim is None:
            raise AttributeError("the LangChain embeddings' dimension is known after their first vectors")
        return self._dim

    @dim.setter
    def dim(self, value: int) -> None:
        self._dim = int(value)

    @property
    def knows_dim(self) -> bool:
        return self._dim is not None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if texts and all(text in self._prepared for text in texts):
            return np.stack([self._prepared[text] for text in texts])
        return self.embed_documents(texts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.rows(self.embeddings.embed_documents(list(texts)), len(texts))

    def embed_query(self, text: str) -> np.ndarray:
        return self.rows([self.embeddings.embed_query(text)], 1)[0]

    async def aembed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.rows(await self.embeddings.aembed_documents(list(texts)), len(texts))

    async def aembed_query(self, text: str) -> np.ndarray:
        return self.rows([await self.embeddings.aembed_query(text)], 1)[0]

    def rows(self, vectors: Any, count: int) -> np.ndarray:
        """LangChain's lists of floats as checked, unit-length float32 rows: a wrong shape or a NaN
        is an error here rather than a damaged index later."""
        array = np.asarray(vectors, dtype=np.float32)
        if count == 0:
            return array.reshape(0, self._dim or 0)
        if array.ndim != 2 or array.shape[0] != count or array.shape[1] == 0:
            raise ValueError(f"{self.argument}: expected {count} vectors, got an array of shape {array.shape}")
        if self._dim is None:
            self._dim = int(array.shape[1])
        elif array.shape[1] != self._dim:
            raise ValueError(f"{self.argument}: vectors of {array.shape[1]} dimensions, but the collection's have {self._dim}")
        if not np.isfinite(array).all():
            raise ValueError(f"{self.argument}: the embeddings returned NaN or infinite values")
        return normalise(array)

    @contextlib.contextmanager
    def prepared(self, vectors: Mapping[str, np.ndarray]) -> Iterator[None]:
        """Within the block, ``encode`` answers these texts with these vectors instead of embedding them."""
        before = self._prepared
        self._prepared = {**before, **vectors}
        try:
            yield
        finally:
            self._prepared = before


class SemsearchEmbeddings(Embeddings):
    """A semsearch encoder as LangChain ``Embeddings``: the bundled multilingual one by default, so a
    LangChain application can embed offline, with no API key and no model download.

    ``encoder`` is an ``Encoder`` or a spec (``sentence-transformers:all-MiniLM-L6-v2``); ``model``
    is its spec, which the store records in its manifest.
    """

    def __init__(self, encoder: Encoder | str = DEFAULT_ENCODER) -> None:
        self.encoder = resolve_encoder(encoder)
        self.model = format_spec(self.encoder.name, self.encoder.argument)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.encode(list(texts)).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.encode([text])[0].tolist()


def langchain_document(document: Document | Hit) -> LangChainDocument:
    """A stored document as LangChain knows it: its LangChain id, and its metadata without the store's key."""
    meta = dict(document.meta)
    langchain_id = meta.pop(ID_KEY, None)
    return LangChainDocument(id=langchain_id, page_content=document.text, metadata=meta)
