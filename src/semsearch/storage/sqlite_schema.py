"""The document store's SQLite schema, and connections that trust none but it.

A store may come from a stranger: before any query, ``sqlite_master`` must hold exactly what
``SCHEMA`` creates (and FTS5's shadow tables), the schema is not trusted (``trusted_schema=OFF``)
and, where Python offers it, the connection is in defensive mode.
"""

from __future__ import annotations

import functools
import sqlite3
from contextlib import closing
from pathlib import Path

from semsearch.errors import CollectionError

SCHEMA = """
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    date TEXT,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX documents_date ON documents(date);
CREATE VIRTUAL TABLE documents_fts USING fts5(text, content='documents', content_rowid='id');
CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""
# Version 2: ``key``, the integer the index knows a document by, and ``id``, the document's own (an integer or a
# string, kept as given; no declared type, so SQLite converts neither).
SCHEMA_V2 = """
CREATE TABLE documents (
    key INTEGER PRIMARY KEY,
    id NOT NULL UNIQUE,
    text TEXT NOT NULL,
    date TEXT,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX documents_date ON documents(date);
CREATE VIRTUAL TABLE documents_fts USING fts5(text, content='documents', content_rowid='key');
CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, text) VALUES (new.key, new.text);
END;
CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.key, old.text);
END;
"""
SCHEMAS = {1: SCHEMA, 2: SCHEMA_V2}
# The tables FTS5 keeps for documents_fts (an external-content table, so documents_fts_content is not among them
# today); their SQL is FTS5's, which may differ between SQLite versions, so only their names are checked.
FTS5_SHADOW_TABLES = frozenset(f"documents_fts_{suffix}" for suffix in ("data", "idx", "content", "docsize", "config"))


@functools.cache
def _schema_objects(version: int = 1) -> dict[str, tuple[str, str]]:
    """Name to (type, SQL) of each object the schema of ``version`` creates, FTS5's shadow tables apart."""
    with closing(sqlite3.connect(":memory:")) as connection:
        connection.executescript(SCHEMAS[version])
        rows = connection.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    return {name: (kind, _normal_sql(sql)) for kind, name, sql in rows if name not in FTS5_SHADOW_TABLES}


def _normal_sql(sql: str | None) -> str:
    return " ".join((sql or "").split())


def _article(kind: str) -> str:
    return "an" if kind[:1] in "aeiou" else "a"


def _distrust(connection: sqlite3.Connection) -> None:
    """No code from the file's schema runs unchecked: trusted_schema off and, where Python can set it, defensive mode
    (no writable_schema, no writes to FTS5's shadow tables but FTS5's own). Python 3.11 has no setconfig: skipped."""
    connection.execute("PRAGMA trusted_schema = OFF")
    defensive = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)
    if defensive is not None and hasattr(connection, "setconfig"):
        connection.setconfig(defensive, True)


def _check_schema(connection: sqlite3.Connection, path: Path, version: int = 1) -> None:
    """The store holds what SCHEMA creates and nothing else, read from sqlite_master before any table or view is queried:
    a view named documents (say, one that recurses forever) or a trigger of someone else's never runs."""
    expected = _schema_objects(version)
    found: set[str] = set()
    for kind, name, sql in connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY rowid"):
        if (kind == "table" and name in FTS5_SHADOW_TABLES) or expected.get(name) == (kind, _normal_sql(sql)):
            found.add(name)
            continue
        raise CollectionError(f"{path}: the document store has {_article(kind)} {kind} semsearch did not create: {name}")
    for name, (kind, _) in expected.items():
        if name not in found:
            raise CollectionError(f"{path}: not a readable document store: it has no {kind} {name}")


def _connect_checked(database: str, path: Path, *, uri: bool, writes: bool, version: int = 1) -> sqlite3.Connection:
    """A connection to a store whose schema has been checked; a CollectionError, and no connection left open, if not."""
    connection = sqlite3.connect(database, uri=uri, check_same_thread=False)
    try:
        _distrust(connection)
        _check_schema(connection, path, version)
        connection.execute("SELECT count(*) FROM documents LIMIT 1")
        if writes:
            # SQLite refuses FTS5 (not marked innocuous) in the two triggers that keep the keyword index in step
            # while trusted_schema is off. The check above proved every trigger is SCHEMA's own, so trust them.
            connection.execute("PRAGMA trusted_schema = ON")
    except sqlite3.DatabaseError as error:
        connection.close()
        raise CollectionError(f"{path}: not a readable document store: {error}") from None
    except BaseException:
        connection.close()
        raise
    return connection


