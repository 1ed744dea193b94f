"""The document store opened safely, on real SQLite: any path (a `file:` URI is quoted), and a store holding
schema objects semsearch did not create (a trigger, a view in place of a table) refused before anything runs."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from semsearch import Collection
from semsearch.errors import CollectionError
from semsearch.storage.layout import DOCUMENTS_FILE, data_directory, describe_files, read_manifest, write_manifest
from semsearch.storage.store import DocumentStore

HEADLINES = "publish_date,headline_text,desk\n" + "".join(f"2003021{i},headline number {i} about rain,d{i % 3}\n" for i in range(8))


def build(directory: Path, fake_encoder) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "news.csv"
    source.write_text(HEADLINES)
    path = directory / "news.semsearch"
    Collection.build(source, path, encoder=fake_encoder, backend="exact").close()
    return path


@pytest.mark.parametrize("name", ["we#ird?dir%20", "mode=rw?mode=ro#x", "100%"])
def test_a_collection_in_a_directory_with_uri_characters_opens_searches_and_updates(tmp_path: Path, fake_encoder, name: str) -> None:
    path = build(tmp_path / name, fake_encoder)
    with Collection.open(path, encoder=fake_encoder) as collection:
        hits = collection.search("headline number 3", k=2, mode="semantic")
        assert hits[0].text == "headline number 3 about rain"
        assert collection.search("rain", k=3, mode="keyword"), "the keyword index answers too"
        more = tmp_path / "more.csv"
        more.write_text("publish_date,headline_text\n20030301,storm floods the town\n")
        collection.add(more)
        assert collection.search("storm floods", k=1, mode="keyword")[0].text == "storm floods the town"
    with Collection.open(path, encoder=fake_encoder) as reopened:
        assert len(reopened) == 9


def tamper(path: Path, *statements: str) -> Path:
    """Run SQL on a collection's store and record the new size and sha256, as a crafted collection would."""
    manifest = read_manifest(path)
    store = data_directory(path, manifest) / DOCUMENTS_FILE
    with closing(sqlite3.connect(store)) as connection:
        connection.executescript(";\n".join(statements))
    manifest["files"] = describe_files(path, list(manifest["files"]))
    write_manifest(path, manifest)
    return store


def assert_refused(path: Path, fake_encoder, expected: str) -> None:
    with pytest.raises(CollectionError) as raised:
        Collection.open(path, encoder=fake_encoder)
    message = str(raised.value)
    assert "\n" not in message and message.endswith(expected), message


@pytest.mark.timeout(60)
def test_a_store_with_a_trigger_semsearch_did_not_create_is_refused(tmp_path: Path, fake_encoder) -> None:
    path = build(tmp_path, fake_encoder)
    store = tamper(path, "CREATE TABLE seen(id)", "CREATE TRIGGER spy AFTER INSERT ON documents BEGIN INSERT INTO seen VALUES (new.id); END")
    assert_refused(path, fake_encoder, f"{store}: the document store has a table semsearch did not create: seen")
    tamper(path, "DROP TABLE seen")  # the trigger alone
    assert_refused(path, fake_encoder, f"{store}: the document store has a trigger semsearch did not create: spy")


@pytest.mark.timeout(60)
def test_a_store_whose_own_trigger_was_rewritten_is_refused(tmp_path: Path, fake_encoder) -> None:
    path = build(tmp_path, fake_encoder)
    store = tamper(
        path,
        "DROP TRIGGER documents_fts_insert",
        "CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN DELETE FROM documents; END",
    )
    assert_refused(path, fake_encoder, f"{store}: the document store has a trigger semsearch did not create: documents_fts_insert")


@pytest.mark.timeout(60)
def test_a_store_whose_documents_are_a_recursive_view_is_refused_without_running_it(tmp_path: Path, fake_encoder) -> None:
    """Counting the rows of this view would never end; the store is refused from its schema alone."""
    path = build(tmp_path, fake_encoder)
    store = tamper(
        path,
        "DROP TRIGGER documents_fts_insert",
        "DROP TRIGGER documents_fts_delete",
        "DROP TABLE documents_fts",
        "DROP TABLE documents",
        "CREATE VIEW documents(id, text, date, meta) AS WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n) "
        "SELECT i, 'forever', NULL, '{}' FROM n",
    )
    assert_refused(path, fake_encoder, f"{store}: the document store has a view semsearch did not create: documents")


def test_a_store_missing_a_table_is_refused(tmp_path: Path) -> None:
    store = tmp_path / DOCUMENTS_FILE
    DocumentStore.create(store).close()
    with closing(sqlite3.connect(store)) as connection:
        connection.executescript("DROP TRIGGER documents_fts_insert")
    with pytest.raises(CollectionError, match=r"not a readable document store: it has no trigger documents_fts_insert$"):
        DocumentStore.open(store)


def test_store_connections_do_not_trust_the_schema(tmp_path: Path) -> None:
    """Read-only opens keep trusted_schema off; every connection is defensive where Python can say so."""
    store = tmp_path / DOCUMENTS_FILE
    DocumentStore.create(store).close()
    opened = DocumentStore.open(store)
    try:
        assert opened._connection.execute("PRAGMA trusted_schema").fetchone()[0] == 0
        if hasattr(opened._connection, "getconfig") and hasattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE"):
            assert opened._connection.getconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE)
    finally:
        opened.close()
