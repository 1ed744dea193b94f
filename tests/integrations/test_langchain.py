"""SemsearchVectorStore beyond LangChain's standard suite: how ids and filters map, scores, persistence, the encoder adapter."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("langchain_core", reason="the langchain extra is not installed: pip install 'semsearch[langchain]'")

from langchain_core.documents import Document as LangChainDocument  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings  # noqa: E402

from semsearch.errors import CollectionError, SemsearchError  # noqa: E402
from semsearch.integrations import langchain as integration  # noqa: E402
from semsearch.integrations.langchain import (  # noqa: E402
    ID_KEY,
    LangChainEncoder,
    SemsearchEmbeddings,
    SemsearchVectorStore,
    document_id,
)
from tests.conftest import FakeEncoder  # noqa: E402

HEADLINES = {
    "h1": ("farmers welcome rain relief", {"section": "rural", "year": 2003}),
    "h2": ("rain brings relief for farmers", {"section": "rural", "year": 2004}),
    "h3": ("fires threaten property", {"section": "news", "year": 2003}),
    "h4": ("rivkin trial aborted", {"section": "courts", "year": 2003}),
}


class CountingEmbeddings(Embeddings):
    """Hashed bag of words (texts sharing words are near) that counts its calls; queries get a mark of their own
    in the last dimension, so a query embedded as a document would score differently."""

    def __init__(self, dim: int = 64) -> None:
        self.encoder = FakeEncoder(dim)
        self.calls: dict[str, int] = {"documents": 0, "query": 0, "adocuments": 0, "aquery": 0}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls["documents"] += 1
        return self.encoder.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        self.calls["query"] += 1
        vector = self.encoder.encode([text])[0]
        vector[-1] += 0.5
        return vector.tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls["adocuments"] += 1
        return self.encoder.encode(texts).tolist()

    async def aembed_query(self, text: str) -> list[float]:
        self.calls["aquery"] += 1
        return self.embed_query(text)


def fill(store: SemsearchVectorStore) -> list[str]:
    return store.add_texts([text for text, _ in HEADLINES.values()], [meta for _, meta in HEADLINES.values()], ids=list(HEADLINES))


@pytest.fixture
def store():
    with SemsearchVectorStore(SemsearchEmbeddings(FakeEncoder())) as made:
        yield made


def test_ids_are_kept_in_the_metadata_and_hashed_to_integer_ids(store: SemsearchVectorStore) -> None:
    fill(store)
    assert document_id("h1") == document_id("h1") and 1 <= document_id("h1") <= 2**63 - 1
    stored = store.collection.store.get([document_id("h1")])[document_id("h1")]
    assert stored.meta == {"section": "rural", "year": 2003, ID_KEY: "h1"}
    assert store.get_by_ids(["h4", "missing", "h1", "h4"]) == [
        LangChainDocument(id="h4", page_content="rivkin trial aborted", metadata={"section": "courts", "year": 2003}),
        LangChainDocument(id="h1", page_content="farmers welcome rain relief", metadata={"section": "rural", "year": 2003}),
    ]
    generated = store.add_texts(["no id given"])
    assert len(generated) == 1 and store.get_by_ids(generated)[0].id == generated[0]


def test_filters_are_metadata_equality(store: SemsearchVectorStore) -> None:
    fill(store)
    rural = store.similarity_search("fires rain", k=4, filter={"section": "rural"})
    assert {document.id for document in rural} == {"h1", "h2"}
    assert [document.id for document in store.similarity_search("rain", k=4, filter={"section": "rural", "year": 2004})] == ["h2"]
    assert store.similarity_search("rain", k=4, filter={"section": "sport"}) == []
    assert store.similarity_search("rain", k=4, filter={"no such field": 1}) == []  # LangChain: nothing matches
    # Chroma's operators, as LangChain users write filters for other stores
    assert {d.id for d in store.similarity_search("rain", k=4, filter={"section": {"$in": ["rural", "courts"]}})} == {"h1", "h2", "h4"}
    assert {d.id for d in store.similarity_search("rain", k=4, filter={"$and": [{"year": {"$lt": 2004}}, {"section": {"$ne": "news"}}]})} == {"h1", "h4"}
    with pytest.raises(SemsearchError, match="no operator"):
        store.similarity_search("rain", filter={"section": {"$like": "rur%"}})
    with pytest.raises(SemsearchError, match="can only compare"):
        store.similarity_search("rain", filter={"section": ["rural"]})
    with pytest.raises(TypeError, match="filter"):
        store.similarity_search("rain", filter=lambda document: True)  # type: ignore[arg-type]
    retriever = store.as_retriever(search_kwargs={"k": 1, "filter": {"section": "news"}})
    assert [document.id for document in retriever.invoke("rain relief")] == ["h3"]


def test_scores_are_cosines_and_relevance_is_the_cosine_clipped(store: SemsearchVectorStore) -> None:
    fill(store)
    vector = store.embeddings.embed_query("rivkin trial aborted")
    document, score = store.similarity_search_with_score_by_vector(vector, k=1)[0]
    assert document.id == "h4" and math.isclose(score, 1.0, abs_tol=1e-5)
    scored = store.similarity_search_with_score("farmers rain", k=4)
    assert [s for _, s in scored] == sorted((s for _, s in scored), reverse=True)
    relevance = store.similarity_search_with_relevance_scores("farmers rain", k=4)
    assert [r for _, r in relevance] == [min(1.0, max(0.0, s)) for _, s in scored]
    threshold = store.as_retriever(search_type="similarity_score_threshold", search_kwargs={"k": 4, "score_threshold": 0.3})
    assert {document.id for document in threshold.invoke("farmers rain")} == {d.id for d, s in scored if s >= 0.3}
    assert store.similarity_search_by_vector(vector, k=2)[0].id == "h4"


def test_maximal_marginal_relevance_prefers_unlike_documents(store: SemsearchVectorStore) -> None:
    fill(store)
    store.add_texts(["farmers welcome rain relief"], [{"section": "rural"}], ids=["h1-copy"])
    plain = [document.id for document in store.similarity_search("farmers welcome rain relief", k=2)]
    assert set(plain) == {"h1", "h1-copy"}
    diverse = store.max_marginal_relevance_search("farmers welcome rain relief", k=2, fetch_k=5, lambda_mult=0.3)
    assert len(diverse) == 2 and diverse[0].id in {"h1", "h1-copy"} and diverse[1].id not in {"h1", "h1-copy"}
    assert len(store.as_retriever(search_type="mmr", search_kwargs={"k": 3}).invoke("rain")) == 3


def test_keyword_and_hybrid_modes_use_the_collections_keyword_index() -> None:
    embeddings = CountingEmbeddings()
    with SemsearchVectorStore(embeddings) as store:
        fill(store)
        assert [document.id for document in store.similarity_search("rivkin", k=1, mode="keyword")] == ["h4"]
        assert embeddings.calls["query"] == 0  # a keyword search embeds nothing
        assert store.similarity_search("rivkin trial", k=1, mode="hybrid")[0].id == "h4"
        with pytest.raises(ValueError, match="by meaning only"):
            store.similarity_search_by_vector([0.0] * 64, mode="keyword")


def test_documents_use_embed_documents_once_per_add_and_queries_embed_query() -> None:
    embeddings = CountingEmbeddings()
    with SemsearchVectorStore(embeddings) as store:
        assert store.similarity_search("anything") == []
        assert embeddings.calls == {"documents": 0, "query": 0, "adocuments": 0, "aquery": 0}  # an empty store calls nothing
        fill(store)  # the first add builds the collection: still one call
        assert embeddings.calls["documents"] == 1
        hits = store.similarity_search_with_score("rivkin trial aborted", k=1)
        assert embeddings.calls["query"] == 1
        query = np.asarray(embeddings.embed_query("rivkin trial aborted"))
        document = np.asarray(embeddings.embed_documents(["rivkin trial aborted"])[0])
        expected = float(query @ document / np.linalg.norm(query) / np.linalg.norm(document))
        assert hits[0][0].id == "h4" and math.isclose(hits[0][1], expected, rel_tol=1e-5)  # the query's own vector, not a document's


def test_async_methods_use_the_embeddings_async_calls() -> None:
    embeddings = CountingEmbeddings()

    async def run() -> tuple[list[str], list[LangChainDocument], list[LangChainDocument]]:
        ids = await store.aadd_texts(["farmers welcome rain relief", "rivkin trial aborted"], ids=["a", "b"])
        found = await store.asimilarity_search("rivkin", k=1)
        fetched = await store.aget_by_ids(["b"])
        await store.adelete(["a"])
        return ids, found, fetched

    with SemsearchVectorStore(embeddings) as store:
        ids, found, fetched = asyncio.run(run())
        assert ids == ["a", "b"] and found[0].id == "b" and fetched[0].page_content == "rivkin trial aborted"
        assert embeddings.calls["adocuments"] == 1 and embeddings.calls["aquery"] == 1 and embeddings.calls["documents"] == 0
        assert [document.id for document in store.similarity_search("rain", k=5)] == ["b"]


def test_a_stored_collection_reopens_with_the_same_embeddings_only(tmp_path) -> None:
    path = tmp_path / "notes.semsearch"
    with SemsearchVectorStore(DeterministicFakeEmbedding(size=8), path=path) as store:
        store.add_texts(["one", "two"], [{"n": 1}, {"n": 2}], ids=["1", "2"])
    assert path.is_dir()  # a path the user gave outlives the store
    with SemsearchVectorStore(DeterministicFakeEmbedding(size=8), path=path) as again:
        assert [document.page_content for document in again.get_by_ids(["2", "1"])] == ["two", "one"]
        assert again.similarity_search("one", k=1)[0].id == "1"
        manifest = again.collection.info()
        assert manifest["encoder"]["name"] == "langchain"
        assert manifest["encoder"]["argument"] == "langchain_core.embeddings.fake.DeterministicFakeEmbedding"
        assert manifest["backend"]["name"] == "exact"
    with pytest.raises(CollectionError, match="built with encoder"):
        SemsearchVectorStore(SemsearchEmbeddings(FakeEncoder(8)), path=path)
    with SemsearchVectorStore(DeterministicFakeEmbedding(size=6), path=path) as other_size:
        with pytest.raises(ValueError, match="6 dimensions, but the collection's have 8"):
            other_size.similarity_search("one")


def test_delete_everything_then_add_again(store: SemsearchVectorStore) -> None:
    fill(store)
    assert store.delete() is True
    assert store.similarity_search("rain", k=4) == [] and store.get_by_ids(list(HEADLINES)) == []
    store.add_texts(["rain again"], ids=["r"])
    assert [document.id for document in store.similarity_search("rain", k=4)] == ["r"]


def test_texts_and_metadata_round_trip_exactly(store: SemsearchVectorStore) -> None:
    texts = ["  spaced,  as given \n", "", "ünïcödé — 東京", "x" * 5000]
    metas = [{"nested": {"a": [1, 2, {"b": None}]}}, {}, {"flag": True, "score": 0.25}, {"n": -(2**62)}]
    ids = store.add_texts(texts, metas, ids=["s", "e", "u", "long"])
    assert [(d.page_content, d.metadata) for d in store.get_by_ids(ids)] == list(zip(texts, metas))


def test_the_last_of_an_id_given_twice_wins(store: SemsearchVectorStore) -> None:
    assert store.add_texts(["first", "second"], [{"v": 1}, {"v": 2}], ids=["same", "same"]) == ["same", "same"]
    assert store.get_by_ids(["same"]) == [LangChainDocument(id="same", page_content="second", metadata={"v": 2})]
    assert len(store.collection) == 1
    [(document, score)] = store.similarity_search_with_score("second", k=1)
    assert document.page_content == "second" and math.isclose(score, 1.0, abs_tol=1e-5)  # with the second text's vector


def test_bad_rows_are_refused_before_anything_is_written(store: SemsearchVectorStore) -> None:
    store.add_texts(["kept"], ids=["k"])
    with pytest.raises(ValueError, match="store's own"):
        store.add_texts(["a"], [{ID_KEY: "mine"}])
    with pytest.raises(ValueError, match="NaN"):
        store.add_texts(["a", "b"], [{}, {"x": float("nan")}], ids=["a", "b"])
    with pytest.raises(ValueError, match="2 texts but 1 metadatas"):
        store.add_texts(["a", "b"], [{}])
    with pytest.raises(ValueError, match="2 texts but 3 ids"):
        store.add_texts(["a", "b"], ids=["1", "2", "3"])
    assert [document.id for document in store.similarity_search("a", k=5)] == ["k"]


def test_a_hash_collision_is_refused_not_overwritten(store: SemsearchVectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(integration, "document_id", lambda langchain_id: 42)
    store.add_texts(["first"], ids=["one"])
    with pytest.raises(ValueError, match="hashes to the document id of the stored 'one'"):
        store.add_texts(["second"], ids=["two"])
    with pytest.raises(ValueError, match="hash to the same document id"):
        store.add_texts(["x", "y"], ids=["three", "four"])
    assert store.get_by_ids(["two"]) == [] and store.delete(["two"]) is True  # another id with the same hash is not "one"
    assert store.get_by_ids(["one"])[0].page_content == "first"


def test_from_texts_passes_the_store_options(tmp_path) -> None:
    with SemsearchVectorStore.from_texts(["alpha", "beta"], DeterministicFakeEmbedding(size=6), [{"i": 0}, {"i": 1}],
                                         ids=["a", "b"], path=tmp_path / "s.semsearch", backend="usearch") as store:
        assert store.collection.info()["backend"]["name"] == "usearch"
        assert store.similarity_search("beta", k=1) == [LangChainDocument(id="b", page_content="beta", metadata={"i": 1})]
    documents = [LangChainDocument(page_content="gamma", metadata={"g": 1}, id="g")]
    with SemsearchVectorStore.from_documents(documents, DeterministicFakeEmbedding(size=6)) as store:
        assert store.get_by_ids(["g"]) == documents


def test_close_deletes_a_temporary_store() -> None:
    store = SemsearchVectorStore(DeterministicFakeEmbedding(size=6))
    store.add_texts(["one"])
    assert store.path.is_dir()
    store.close()
    assert not store.path.exists()
    assert store.similarity_search("one") == []
    with pytest.raises(SemsearchError, match="closed"):
        store.add_texts(["two"])


def test_the_encoder_adapter_gives_unit_float32_rows_and_learns_its_dimension() -> None:
    encoder = LangChainEncoder(DeterministicFakeEmbedding(size=5))
    assert not encoder.knows_dim
    vectors = encoder.encode(["a", "b"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 5) and encoder.dim == 5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert encoder.spec() == {"name": "langchain", "argument": "langchain_core.embeddings.fake.DeterministicFakeEmbedding", "version": "1", "dim": 5}
    with pytest.raises(ValueError, match="NaN"):
        encoder.rows([[float("nan")] * 5], 1)
    with pytest.raises(ValueError, match="expected 2 vectors"):
        encoder.rows([[1.0] * 5], 2)
    assert LangChainEncoder(SemsearchEmbeddings(FakeEncoder(8))).argument == "semsearch.integrations.langchain_embeddings.SemsearchEmbeddings:fake-hash"


def test_without_langchain_core_the_import_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['langchain_core'] = None  # as if not installed\n"
        "try:\n"
        "    import semsearch.integrations.langchain\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("MissingExtraError") and "pip install 'semsearch[langchain]'" in result.stdout
