"""DocumentStore: the texts, dates and metadata of a collection, in SQLite, with an FTS5 keyword index."""

from __future__ import annotations

import datetime
import functools
import json
import re
import shutil
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.documents import Document
from semsearch.errors import CollectionError
from semsearch.filters import Filter

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
# The tables FTS5 keeps for documents_fts (an external-content table, so documents_fts_content is not among them
# today); their SQL is FTS5's, which may differ between SQLite versions, so only their names are checked.
FTS5_SHADOW_TABLES = frozenset(f"documents_fts_{suffix}" for suffix in ("data", "idx", "content", "docsize", "config"))


@functools.cache
def _schema_objects() -> dict[str, tuple[str, str]]:
    """Name to (type, SQL) of each object SCHEMA creates, FTS5's shadow tables apart."""
    with closing(sqlite3.connect(":memory:")) as connection:
        connection.executescript(SCHEMA)
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


def _check_schema(connection: sqlite3.Connection, path: Path) -> None:
    """The store holds what SCHEMA creates and nothing else, read from sqlite_master before any table or view is queried:
    a view named documents (say, one that recurses forever) or a trigger of someone else's never runs."""
    expected = _schema_objects()
    found: set[str] = set()
    for kind, name, sql in connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY rowid"):
        if (kind == "table" and name in FTS5_SHADOW_TABLES) or expected.get(name) == (kind, _normal_sql(sql)):
            found.add(name)
            continue
        raise CollectionError(f"{path}: the document store has {_article(kind)} {kind} semsearch did not create: {name}")
    for name, (kind, _) in expected.items():
        if name not in found:
            raise CollectionError(f"{path}: not a readable document store: it has no {kind} {name}")


def _connect_checked(database: str, path: Path, *, uri: bool, writes: bool) -> sqlite3.Connection:
    """A connection to a store whose schema has been checked; a CollectionError, and no connection left open, if not."""
    connection = sqlite3.connect(database, uri=uri, check_same_thread=False)
    try:
        _distrust(connection)
        _check_schema(connection, path)
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


def _row_to_document(row: tuple[int, str, str | None, str]) -> Document:
    document_id, text, date, meta = row
    return Document(
        id=document_id,
        text=text,
        date=datetime.date.fromisoformat(date) if date else None,
        meta=json.loads(meta) if meta and meta != "{}" else {},
    )


class DocumentStore:
    """Id to document. Opened read-only for search, read-write while a build or update writes it."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path

    @classmethod
    def create(cls, path: Path, *, journaled: bool = False) -> DocumentStore:
        """A new, empty store. Durability comes from the collection's atomic rename, not the journal.

        ``journaled`` (a build that can be resumed): each ``add`` is a transaction that survives
        a crash (WAL); ``finish`` folds the log back into the one file.
        """
        connection = sqlite3.connect(path, check_same_thread=False)
        _distrust(connection)
        connection.execute("PRAGMA trusted_schema = ON")  # the schema is the one created here (see _connect_checked)
        connection.execute(f"PRAGMA journal_mode = {'WAL' if journaled else 'OFF'}")
        connection.execute(f"PRAGMA synchronous = {'NORMAL' if journaled else 'OFF'}")
        connection.executescript(SCHEMA)
        return cls(connection, path)

    @classmethod
    def open_copy(cls, source: Path, path: Path) -> DocumentStore:
        """A writable copy of a store, for an update; the original stays as readers see it.

        Like ``create``, durability comes from the manifest switch, not the journal: a crash
        leaves an unreferenced copy that the next update deletes.
        """
        shutil.copyfile(source, path)
        connection = _connect_checked(str(path), path, uri=False, writes=True)
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        return cls(connection, path)

    @classmethod
    def open(cls, path: Path, *, read_only: bool = True) -> DocumentStore:
        if not path.is_file():
            raise CollectionError(f"{path}: missing")
        # Quoted: a '#', '?' or '%' in the path would otherwise end it, start the query or escape (and, unquoted,
        # 'dir#x' opened, and created, 'dir' with the default mode, rwc).
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode={'ro' if read_only else 'rw'}"
        return cls(_connect_checked(uri, path, uri=True, writes=not read_only), path)

    def add(self, documents: Sequence[Document]) -> None:
        rows = [
            (
                document.id,
                document.text,
                document.date.isoformat() if document.date else None,
                json.dumps(document.meta, ensure_ascii=False, default=str) if document.meta else "{}",
            )
            for document in documents
        ]
        try:
            with self._connection:
                self._connection.executemany("INSERT INTO documents (id, text, date, meta) VALUES (?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError:
            existing = self.existing([row[0] for row in rows])
            duplicate = existing[0] if existing else _first_repeat([row[0] for row in rows])
            raise CollectionError(f"duplicate document id {duplicate}") from None

    def remove(self, ids: Iterable[int]) -> None:
        with self._connection:
            self._connection.executemany("DELETE FROM documents WHERE id = ?", [(int(i),) for i in ids])

    def existing(self, ids: Iterable[int]) -> list[int]:
        """Those of ``ids`` that are in the store, in ascending order."""
        return sorted(row[0] for row in self._rows_with_ids("id", ids))

    def max_id(self) -> int:
        """The largest id in the store, -1 when empty: new documents without ids are numbered after it."""
        value = self._connection.execute("SELECT max(id) FROM documents").fetchone()[0]
        return -1 if value is None else int(value)

    def ids(self) -> np.ndarray:
        """Every id, ascending, as int64."""
        return self._ids_where("1", [])

    def get(self, ids: Iterable[int]) -> dict[int, Document]:
        return {row[0]: _row_to_document(row) for row in self._rows_with_ids("id, text, date, meta", ids)}

    def _rows_with_ids(self, columns: str, ids: Iterable[int], clause: str = "1", parameters: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """``columns`` of the documents with these ids (and matching ``clause``), in no particular order."""
        ids = [int(i) for i in ids]
        # SQLite limits the number of bound parameters; 500 is safely below every build's limit.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from self._connection.execute(f"SELECT {columns} FROM documents WHERE id IN ({marks}) AND {clause}", [*chunk, *parameters])

    def _ids_where(self, clause: str, parameters: Sequence[Any]) -> np.ndarray:
        rows = self._connection.execute(f"SELECT id FROM documents WHERE {clause} ORDER BY id", parameters).fetchall()
        return np.array([row[0] for row in rows], dtype=np.int64)

    # -- filters and keyword search --

    def count_matching(self, where: Filter) -> int:
        clause, parameters = where.sql()
        return self._connection.execute(f"SELECT count(*) FROM documents WHERE {clause}", parameters).fetchone()[0]

    def matching_ids(self, where: Filter) -> np.ndarray:
        """Ids of every document the filter matches, ascending."""
        return self._ids_where(*where.sql())

    def filter_ids(self, ids: Iterable[int], where: Filter) -> set[int]:
        """Those of ``ids`` whose documents the filter matches."""
        return {row[0] for row in self._rows_with_ids("id", ids, *where.sql())}

    def keyword_search(self, text: str, k: int, where: Filter | None = None) -> list[tuple[int, float]]:
        """The k best documents by BM25 for any of the query's words, as (id, score), higher is better.

        The query's words are quoted, so FTS5 syntax in user input is matched as text, never run.
        """
        words = keyword_terms(text)
        if not words:
            return []
        match = " OR ".join(f'"{word}"' for word in words)
        clause, parameters = where.sql("documents") if where else ("1", [])
        query = (
            "SELECT documents.id, bm25(documents_fts) AS rank FROM documents_fts "
            "JOIN documents ON documents.id = documents_fts.rowid "
            f"WHERE documents_fts MATCH ? AND {clause} ORDER BY rank LIMIT ?"
        )
        rows = self._connection.execute(query, [match, *parameters, k]).fetchall()
        return [(int(document_id), -float(rank)) for document_id, rank in rows]

    def __len__(self) -> int:
        return self._connection.execute("SELECT count(*) FROM documents").fetchone()[0]

    def finish(self) -> None:
        """Compact the keyword index once the bulk of a build is in, then flush."""
        with self._connection:
            self._connection.execute("INSERT INTO documents_fts(documents_fts) VALUES ('optimize')")
        if self._connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            self._connection.execute("PRAGMA journal_mode = DELETE")  # one file again, for the manifest

    def close(self) -> None:
        self._connection.close()


def keyword_terms(text: str) -> list[str]:
    """The words FTS5's default tokenizer would index: letters and digits, lower-cased, each once."""
    return list(dict.fromkeys(re.findall(r"\w+", text.lower())))


def _first_repeat(ids: Sequence[int]) -> int | None:
    seen: set[int] = set()
    for document_id in ids:
        if document_id in seen:
            return document_id
        seen.add(document_id)
    return None
