"""DocumentStore on real SQLite: documents in and out, ids, filters, keyword search, the copy an update writes."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from semsearch.documents import Document
from semsearch.errors import CollectionError
from semsearch.filters import Filter
from semsearch.storage.store import DocumentStore, keyword_terms

DOCUMENTS = [
    Document(id=3, text="flood warning for the river", date=datetime.date(2003, 2, 1), meta={"desk": "news"}),
    Document(id=7, text="cricket final tonight", date=datetime.date(2004, 5, 6), meta={"desk": "sport", "year": 2004}),
    Document(id=11, text="river flood recedes", date=None, meta={}),
]


@pytest.fixture
def store(tmp_path: Path) -> DocumentStore:
    created = DocumentStore.create(tmp_path / "documents.sqlite", schema=1)
    created.add(DOCUMENTS)
    created.finish()
    created.close()
    opened = DocumentStore.open(tmp_path / "documents.sqlite", schema=1)
    yield opened
    opened.close()


def test_documents_come_back_as_they_went_in(store: DocumentStore) -> None:
    assert store.get([11, 3, 99]) == {3: DOCUMENTS[0], 11: DOCUMENTS[2]}
    assert len(store) == 3
    assert store.keys().tolist() == [3, 7, 11]
    assert store.max_id() == 11
    assert store.existing([1, 7, 11, 12]) == [7, 11]


def test_more_ids_than_one_statement_may_bind(store: DocumentStore) -> None:
    assert store.existing(list(range(5_000))) == [3, 7, 11]


def test_filters_select_by_date_and_metadata(store: DocumentStore) -> None:
    since_2004 = Filter.of(date_from="2004-01-01")
    assert store.count_matching(since_2004) == 1
    assert store.matching_keys(Filter.of(where={"desk": "news"})).tolist() == [3]
    assert store.filter_keys([3, 7, 11], Filter.of(where={"year": "2004"})) == {7}  # text matches a number that prints as it


def test_keyword_search_ranks_by_bm25_and_never_runs_fts_syntax(store: DocumentStore) -> None:
    hits = store.keyword_search("river flood", 10)
    assert {document_id for document_id, _ in hits} == {3, 11}
    assert hits[0][1] >= hits[1][1]
    assert store.keyword_search('flood" OR NOT "x', 10)  # quotes are text, not syntax
    assert [i for i, _ in store.keyword_search("river", 10, Filter.of(date_from="2003-01-01"))] == [3]
    assert keyword_terms("Flood, flood; RIVER!") == ["flood", "river"]


def test_a_duplicate_id_is_one_line_and_adds_nothing(tmp_path: Path) -> None:
    store = DocumentStore.create(tmp_path / "documents.sqlite", schema=1)
    store.add(DOCUMENTS[:1])
    with pytest.raises(CollectionError, match="duplicate document id 3"):
        store.add([DOCUMENTS[1], DOCUMENTS[0]])
    assert len(store) == 1


def test_a_version_2_store_keeps_keys_and_ids_apart_and_ids_as_given(tmp_path: Path) -> None:
    """Schema 2: the index's integer key, and the document's own id beside it, a string kept as it was given."""
    store = DocumentStore.create(tmp_path / "documents.sqlite")
    store.add([Document(id="art-1", text="flood warning"), Document(id="007", text="cricket final")], keys=[40, 41])
    store.add([Document(id="Art-1", text="river flood recedes")])  # no keys: the ones after the largest
    assert store.keys().tolist() == [40, 41, 42]
    assert store.keys_of(["art-1", "007", "7", 7, "nope"]) == {"art-1": 40, "007": 41}, "'007' is not 7, nor 'Art-1' 'art-1'"
    assert store.get([41, 99]) == {41: Document(id="007", text="cricket final")}
    assert [key for key, _ in store.keyword_search("flood", 10)] == [40, 42] or \
        {key for key, _ in store.keyword_search("flood", 10)} == {40, 42}
    assert [(key, document.id) for key, document in store.page(None, 40, 10)] == [(41, "007"), (42, "Art-1")]
    assert store.id_kind() == "string" and store.max_id() == -1
    with pytest.raises(CollectionError, match="duplicate document id 'art-1'"):
        store.add([Document(id="art-1", text="again")], keys=[50])
    with pytest.raises(CollectionError, match="document id '' is empty"):
        store.add([Document(id="", text="no id")], keys=[51])
    store.close()
    reopened = DocumentStore.open(tmp_path / "documents.sqlite")
    assert reopened.filter_keys([40, 41, 42, 43], Filter.of(where=None)) == {40, 41, 42}
    reopened.close()
    with pytest.raises(CollectionError, match="has a table semsearch did not create: documents"):
        DocumentStore.open(tmp_path / "documents.sqlite", schema=1)  # a store is read by its own schema only


def test_opening_a_file_that_is_not_a_store_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "documents.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CollectionError, match="not a readable document store"):
        DocumentStore.open(tmp_path / "documents.sqlite", schema=1)
    with pytest.raises(CollectionError, match="missing"):
        DocumentStore.open(tmp_path / "absent.sqlite", schema=1)
