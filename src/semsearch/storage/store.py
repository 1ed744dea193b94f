"""DocumentStore: the texts, dates and metadata of a collection, in SQLite, with an FTS5 keyword index."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
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
        connection = sqlite3.connect(path, check_same_thread=False)
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        return cls(connection, path)

    @classmethod
    def open(cls, path: Path, *, read_only: bool = True) -> DocumentStore:
        if not path.is_file():
            raise CollectionError(f"{path}: missing")
        uri = f"file:{path}?mode={'ro' if read_only else 'rw'}"
        try:
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            connection.execute("SELECT count(*) FROM documents LIMIT 1")
        except sqlite3.DatabaseError as error:
            raise CollectionError(f"{path}: not a readable document store: {error}") from None
        return cls(connection, path)

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
