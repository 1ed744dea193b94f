"""DocumentStore: the texts, dates and metadata of a collection, in SQLite, with an FTS5 keyword index."""

from __future__ import annotations

import re
import shutil
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.documents import MAX_DOCUMENT_ID, Document, is_document_id
from semsearch.errors import CollectionError
from semsearch.filters import Filter, FilterError
from semsearch.storage.sqlite_schema import SCHEMA, _connect_checked, _distrust
from semsearch.storage.store_rows import _document_row, _origin, _row_to_document


class DocumentStore:
    """Id to document. Opened read-only for search, read-write while a build or update writes it."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self.path = path
        self._known_fields: set[str] = set()  # metadata fields some document has, found by check_fields

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
        # Read-only opens are immutable: a collection's files never change once a manifest names them (an update
        # writes a new generation), so SQLite need not lock, nor look for a journal or WAL a stranger may have planted.
        mode = "mode=ro&immutable=1" if read_only else "mode=rw"
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?{mode}"
        return cls(_connect_checked(uri, path, uri=True, writes=not read_only), path)

    def quick_check(self) -> None:
        """SQLite's own check of the file's structure (pages, b-trees, records), a CollectionError if it fails."""
        try:
            problems = [row[0] for row in self._connection.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as error:
            problems = [str(error)]
        if problems != ["ok"]:
            found = " ".join("; ".join(map(str, problems)).split())[:300]
            raise CollectionError(f"{self.path}: the document store is damaged: {found}")

    def add(self, documents: Sequence[Document]) -> None:
        """Insert documents in one transaction: all of them, or none and a CollectionError naming the document.

        Each needs an id from 0 to 2^63 - 1 that is neither in the store nor repeated in ``documents``, text
        without lone surrogates, a date or None, and metadata that ``meta_problem`` accepts. All of that is
        checked before the first insert: a store written without a journal (a build's, an update's copy)
        cannot roll back a half-inserted batch. The corpus readers refuse most of it with the line it came
        from; the checks here speak for documents made in Python and name the line (``Document.origin``)
        of an id that repeats another.
        """
        rows = [_document_row(document) for document in documents]
        first: dict[int, Document] = {}
        for document in documents:
            if document.id in first:
                earlier = first[document.id].origin
                raise CollectionError(f"{_origin(document)}duplicate document id {document.id}{f' ({earlier} has it too)' if earlier else ''}")
            first[document.id] = document
        existing = self.existing(first)
        if existing:
            raise CollectionError(f"{_origin(first[existing[0]])}duplicate document id {existing[0]}: an earlier document has it")
        try:
            with self._connection:
                self._connection.executemany("INSERT INTO documents (id, text, date, meta) VALUES (?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as error:  # checked above; a constraint of a store made elsewhere
            raise CollectionError(f"{self.path}: the documents cannot be stored: {error}") from None

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
        ids = [i for i in ids if is_document_id(i)]  # one that no document can have is not there (and SQLite cannot bind it)
        # SQLite limits the number of bound parameters; 500 is safely below every build's limit.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from self._connection.execute(f"SELECT {columns} FROM documents WHERE id IN ({marks}) AND {clause}", [*chunk, *parameters])

    def documents(self, where: Filter | None = None, *, limit: int | None = None, offset: int = 0,
                  batch_size: int = 1_000) -> Iterator[Document]:
        """Documents in id order, ``batch_size`` rows per query (keyset pages: memory stays bounded
        and no page costs more than the first, however far in), after skipping ``offset``."""
        clause, parameters = where.sql() if where is not None else ("1", [])
        remaining = limit
        last_id: int | None = None
        if offset > MAX_DOCUMENT_ID:  # further than any collection holds documents
            return
        if offset:
            skipped = self._connection.execute(
                f"SELECT id FROM documents WHERE {clause} ORDER BY id LIMIT 1 OFFSET ?", [*parameters, offset - 1]).fetchone()
            if skipped is None:
                return
            last_id = int(skipped[0])
        while remaining is None or remaining > 0:
            size = batch_size if remaining is None else min(batch_size, remaining)
            after = "" if last_id is None else "AND id > ? "
            rows = self._connection.execute(
                f"SELECT id, text, date, meta FROM documents WHERE ({clause}) {after}ORDER BY id LIMIT ?",
                [*parameters, *([] if last_id is None else [last_id]), size]).fetchall()
            for row in rows:
                yield _row_to_document(row)
            if len(rows) < size:
                return
            last_id = int(rows[-1][0])
            if remaining is not None:
                remaining -= len(rows)

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

    def example_texts(self, count: int = 3, shortest: int = 12, longest: int = 60) -> list[str]:
        """A few texts spread over the collection, of a length that reads well as an example query
        (the search page offers them, so that its examples come from the collection it serves)."""
        total = self._connection.execute("SELECT count(*) FROM documents WHERE length(text) BETWEEN ? AND ?", [shortest, longest]).fetchone()[0]
        examples: list[str] = []
        for part in range(count):
            row = self._connection.execute(
                "SELECT text FROM documents WHERE length(text) BETWEEN ? AND ? ORDER BY id LIMIT 1 OFFSET ?",
                [shortest, longest, (2 * part + 1) * total // (2 * count)]).fetchone()
            if row is not None and row[0] not in examples:
                examples.append(row[0])
        return examples

    def metadata_fields(self, where: Filter | None = None) -> list[str]:
        """Every metadata field some (matching) document has, sorted: the columns of a CSV export."""
        clause, parameters = where.sql() if where is not None else ("1", [])
        rows = self._connection.execute(
            f"SELECT DISTINCT field.key FROM documents, json_each(documents.meta) AS field "
            f"WHERE json_valid(documents.meta) AND json_type(documents.meta) = 'object' AND ({clause}) ORDER BY 1", parameters)
        return [row[0] for row in rows]

    def check_fields(self, where: Filter) -> None:
        """A filter naming a metadata field that no document has is a mistake (a typo, most often):
        a FilterError naming the fields there are, rather than silently no hits."""
        for name in where.fields():
            if name in self._known_fields:
                continue
            found = self._connection.execute("SELECT 1 FROM documents WHERE json_type(meta, ?) IS NOT NULL LIMIT 1",
                                             [f'$."{name}"']).fetchone()
            if found:
                self._known_fields.add(name)
                continue
            present = [row[0] for row in self._connection.execute(
                "SELECT DISTINCT field.key FROM (SELECT meta FROM documents WHERE json_valid(meta) LIMIT 10000) AS sample, "
                "json_each(sample.meta) AS field ORDER BY 1 LIMIT 50")]
            there = f"the fields are {', '.join(present)}" if present else "the documents have no metadata fields"
            raise FilterError(f"no document has a metadata field {name!r}; {there}")

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
