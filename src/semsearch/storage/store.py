"""DocumentStore: the texts, dates and metadata of a segment of a collection, in SQLite, with an FTS5 keyword index."""

from __future__ import annotations

import re
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.documents import Document, DocumentId, is_document_id
from semsearch.errors import CollectionError
from semsearch.filters import Filter
from semsearch.storage.sqlite_schema import SCHEMAS, _connect_checked, _distrust
from semsearch.storage.store_rows import _document_row, _origin, _row_to_document, _stored_id


class DocumentStore:
    """Key to document, for one store file (a segment's). Opened read-only for search, read-write while a build or update writes it.

    ``schema`` 1 (format 1): the id is the key, an integer. ``schema`` 2: an integer key, the
    index's label, and the document's own id beside it, an integer or a string.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path, schema: int = 1) -> None:
        self._connection = connection
        self.path = path
        self.schema = schema
        self._key = "id" if schema == 1 else "key"

    @classmethod
    def create(cls, path: Path, *, journaled: bool = False, schema: int = 2) -> DocumentStore:
        """A new, empty store. Durability comes from the collection's atomic rename, not the journal.

        ``journaled`` (a build that can be resumed): each ``add`` is a transaction that survives
        a crash (WAL); ``finish`` folds the log back into the one file.
        """
        # A URI (quoted, as in ``open``), so that ``copy_from`` can attach another store read-only and immutable.
        connection = sqlite3.connect(f"file:{urllib.parse.quote(str(Path(path).absolute()))}?mode=rwc" if str(path) != ":memory:" else ":memory:",
                                     uri=True, check_same_thread=False)
        _distrust(connection)
        connection.execute("PRAGMA trusted_schema = ON")  # the schema is the one created here (see _connect_checked)
        connection.execute(f"PRAGMA journal_mode = {'WAL' if journaled else 'OFF'}")
        connection.execute(f"PRAGMA synchronous = {'NORMAL' if journaled else 'OFF'}")
        connection.executescript(SCHEMAS[schema])
        return cls(connection, path, schema)

    @classmethod
    def open(cls, path: Path, *, read_only: bool = True, schema: int = 2) -> DocumentStore:
        if not path.is_file():
            raise CollectionError(f"{path}: missing")
        # Quoted: a '#', '?' or '%' in the path would otherwise end it, start the query or escape (and, unquoted,
        # 'dir#x' opened, and created, 'dir' with the default mode, rwc).
        # Read-only opens are immutable: a collection's files never change once a manifest names them (an update
        # writes a new segment), so SQLite need not lock, nor look for a journal or WAL a stranger may have planted.
        mode = "mode=ro&immutable=1" if read_only else "mode=rw"
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?{mode}"
        return cls(_connect_checked(uri, path, uri=True, writes=not read_only, version=schema), path, schema)

    def quick_check(self) -> None:
        """SQLite's own check of the file's structure (pages, b-trees, records), a CollectionError if it fails."""
        try:
            problems = [row[0] for row in self._connection.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as error:
            problems = [str(error)]
        if problems != ["ok"]:
            found = " ".join("; ".join(map(str, problems)).split())[:300]
            raise CollectionError(f"{self.path}: the document store is damaged: {found}")

    def add(self, documents: Sequence[Document], keys: Sequence[int] | None = None) -> None:
        """Insert documents in one transaction: all of them, or none and a CollectionError naming the document.

        Each needs an id (an integer from 0 to 2^63 - 1 or, in a schema-2 store, a string) that is neither in the
        store nor repeated in ``documents``, text without lone surrogates, a date or None, and metadata that
        ``meta_problem`` accepts; a schema-2 store takes the documents' ``keys`` too. All of that is checked
        before the first insert: a store written without a journal (a build's, an update's) cannot roll back a
        half-inserted batch. The corpus readers refuse most of it with the line it came from; the checks here
        speak for documents made in Python and name the line (``Document.origin``) of an id that repeats another.
        """
        rows = [_document_row(document, strings=self.schema == 2) for document in documents]
        first: dict[Any, Document] = {}
        for document in documents:
            if document.id in first:
                earlier = first[document.id].origin
                raise CollectionError(f"{_origin(document)}duplicate document id {document.id!r}{f' ({earlier} has it too)' if earlier else ''}")
            first[document.id] = document
        existing = self.existing(first)
        if existing:
            raise CollectionError(f"{_origin(first[existing[0]])}duplicate document id {existing[0]!r}: an earlier document has it")
        if self.schema == 2:
            if keys is None:  # the keys after the largest: what a store used on its own (a test, a tool) needs
                first = self.max_key() + 1
                keys = range(first, first + len(rows))
            if len(keys) != len(rows):
                raise ValueError("a schema-2 store needs one key per document")
            rows = [(int(key), *row) for key, row in zip(keys, rows)]
            statement = "INSERT INTO documents (key, id, text, date, meta) VALUES (?, ?, ?, ?, ?)"
        else:
            statement = "INSERT INTO documents (id, text, date, meta) VALUES (?, ?, ?, ?)"
        try:
            with self._connection:
                self._connection.executemany(statement, rows)
        except sqlite3.IntegrityError as error:  # checked above; a constraint of a store made elsewhere
            raise CollectionError(f"{self.path}: the documents cannot be stored: {error}") from None

    def copy_from(self, source: DocumentStore, skip: np.ndarray) -> int:
        """Copy every row of ``source`` (another segment's store, checked when it was opened) but the keys in ``skip``,
        in key order, inside SQLite: a merge moves rows as they are, without a Python object per row. Rows added."""
        uri = f"file:{urllib.parse.quote(str(source.path.absolute()))}?mode=ro&immutable=1"
        self._connection.execute("ATTACH DATABASE ? AS source", [uri])
        try:
            self._connection.execute("CREATE TEMP TABLE skipped (key INTEGER PRIMARY KEY)")
            self._connection.executemany("INSERT INTO temp.skipped (key) VALUES (?)", [(int(key),) for key in skip])
            key = source._key
            with self._connection:
                copied = self._connection.execute(  # rowcount: the rows inserted, not the keyword index's trigger writes
                    f"INSERT INTO main.documents (key, id, text, date, meta) SELECT {key}, id, text, date, meta FROM source.documents "
                    f"WHERE {key} NOT IN (SELECT key FROM temp.skipped) ORDER BY {key}").rowcount
        except sqlite3.IntegrityError as error:  # the same id live in two segments: not a collection semsearch wrote
            raise CollectionError(f"{source.path}: cannot be merged: {error}; the collection is damaged") from None
        finally:
            self._connection.execute("DROP TABLE IF EXISTS temp.skipped")
            self._connection.execute("DETACH DATABASE source")
        return copied

    def remove(self, keys: Iterable[int]) -> None:
        with self._connection:
            self._connection.executemany(f"DELETE FROM documents WHERE {self._key} = ?", [(int(i),) for i in keys])

    def existing(self, ids: Iterable[Any]) -> list[Any]:
        """Those of ``ids`` that are in the store (deleted or not: the store does not know), in ascending order."""
        return sorted(self.keys_of(ids), key=_id_order)

    def keys_of(self, ids: Iterable[Any]) -> dict[Any, int]:
        """Document id to key, for those of ``ids`` in the store."""
        return {row[0]: int(row[1]) for row in self._rows_matching("id", f"id, {self._key}", _bindable(ids, self.schema))}

    def max_id(self) -> int:
        """The largest integer id in the store, -1 when it has none: new documents without ids are numbered after it."""
        value = self._connection.execute("SELECT max(id) FROM documents WHERE typeof(id) = 'integer'").fetchone()[0]
        return -1 if value is None else int(value)

    def id_kind(self) -> str | None:
        """"integer" or "string", the kind of the first document's id; None when the store is empty."""
        row = self._connection.execute("SELECT typeof(id) FROM documents LIMIT 1").fetchone()
        return None if row is None else ("integer" if row[0] == "integer" else "string")

    def max_key(self) -> int:
        value = self._connection.execute(f"SELECT max({self._key}) FROM documents").fetchone()[0]
        return -1 if value is None else int(value)

    def keys(self) -> np.ndarray:
        """Every key, ascending, as int64."""
        return self._keys_where("1", [])

    def get(self, keys: Iterable[int]) -> dict[int, Document]:
        """Key to document, for those of ``keys`` in the store."""
        keys = [int(i) for i in keys]
        rows = self._rows_matching(self._key, f"{self._key}, id, text, date, meta", [i for i in keys if is_document_id(i)])
        return {int(row[0]): _row_to_document(row[1:]) for row in rows}

    def _rows_matching(self, column: str, columns: str, values: Sequence[Any], clause: str = "1",
                       parameters: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """``columns`` of the documents whose ``column`` is one of ``values`` (and matching ``clause``), in no particular order."""
        # SQLite limits the number of bound parameters; 500 is safely below every build's limit.
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from self._connection.execute(f"SELECT {columns} FROM documents WHERE {column} IN ({marks}) AND {clause}",
                                                [*chunk, *parameters])

    def page(self, where: Filter | None, after: int | None, size: int) -> list[tuple[int, Document]]:
        """Up to ``size`` (key, document) pairs in key order, after key ``after``: a keyset page, as cheap far in as first."""
        clause, parameters = where.sql() if where is not None else ("1", [])
        later = "" if after is None else f"AND {self._key} > ? "
        rows = self._connection.execute(
            f"SELECT {self._key}, id, text, date, meta FROM documents WHERE ({clause}) {later}ORDER BY {self._key} LIMIT ?",
            [*parameters, *([] if after is None else [after]), size]).fetchall()
        return [(int(row[0]), _row_to_document(row[1:])) for row in rows]

    def key_ids(self, where: Filter | None) -> list[tuple[int, DocumentId]]:
        """(key, id) of every document the filter matches, in key order: the ids alone, no text read."""
        clause, parameters = where.sql() if where is not None else ("1", [])
        rows = self._connection.execute(f"SELECT {self._key}, id FROM documents WHERE {clause} ORDER BY {self._key}", parameters)
        return [(int(key), _stored_id(document_id)) for key, document_id in rows]

    def _keys_where(self, clause: str, parameters: Sequence[Any]) -> np.ndarray:
        # One string from SQLite, parsed by NumPy, and sorted there: a Python tuple per row took 2 to 3 times as long.
        joined = self._connection.execute(f"SELECT group_concat({self._key}) FROM documents WHERE {clause}", parameters).fetchone()[0]
        return np.sort(np.array(joined.split(","), dtype=np.int64)) if joined else np.zeros(0, dtype=np.int64)

    # -- filters and keyword search --

    def count_matching(self, where: Filter | None, limit: int | None = None) -> int:
        """How many documents the filter matches; with ``limit``, counting stops there (the answer is at most
        ``limit``), so that a filter matching half a million documents costs what one matching ``limit`` does."""
        clause, parameters = where.sql() if where is not None else ("1", [])
        if limit is None:
            return self._connection.execute(f"SELECT count(*) FROM documents WHERE {clause}", parameters).fetchone()[0]
        return self._connection.execute(f"SELECT count(*) FROM (SELECT 1 FROM documents WHERE {clause} LIMIT ?)",
                                        [*parameters, limit]).fetchone()[0]

    def sampled_share(self, where: Filter | None, samples: int) -> float:
        """The share of documents the filter matches, estimated from ``samples`` keys spread evenly over the key range
        (the same ones every time, so a search gives the same answer every time); 1 when nothing is sampled."""
        # Two subqueries: SQLite answers a lone min() or max() from the key's b-tree, but scans every row for both at once.
        low, high = self._connection.execute(
            f"SELECT (SELECT min({self._key}) FROM documents), (SELECT max({self._key}) FROM documents)").fetchone()
        if low is None:
            return 1.0
        keys = np.unique(np.linspace(low, high, samples).astype(np.int64)).tolist()
        clause, parameters = where.sql() if where is not None else ("1", [])
        existing = matched = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            found, hits = self._connection.execute(
                f"SELECT count(*), coalesce(sum({clause}), 0) FROM documents WHERE {self._key} IN ({','.join('?' * len(chunk))})",
                [*parameters, *chunk]).fetchone()
            existing, matched = existing + found, matched + hits
        return matched / existing if existing else 1.0

    def matching_keys(self, where: Filter | None) -> np.ndarray:
        """Keys of every document the filter matches, ascending."""
        return self._keys_where(*(where.sql() if where is not None else ("1", [])))

    def filter_keys(self, keys: Iterable[int], where: Filter | None) -> set[int]:
        """Those of ``keys`` whose documents the filter matches."""
        keys = [int(i) for i in keys if is_document_id(int(i))]
        clause, parameters = where.sql() if where is not None else ("1", [])
        return {int(row[0]) for row in self._rows_matching(self._key, self._key, keys, clause, parameters)}

    def keyword_search(self, text: str, k: int, where: Filter | None = None) -> list[tuple[int, float]]:
        """The k best documents by BM25 for any of the query's words, as (key, score), higher is better.

        The query's words are quoted, so FTS5 syntax in user input is matched as text, never run.
        """
        words = keyword_terms(text)
        if not words:
            return []
        match = " OR ".join(f'"{word}"' for word in words)
        clause, parameters = where.sql("documents") if where else ("1", [])
        query = (
            f"SELECT documents.{self._key}, bm25(documents_fts) AS rank FROM documents_fts "
            f"JOIN documents ON documents.{self._key} = documents_fts.rowid "
            f"WHERE documents_fts MATCH ? AND {clause} ORDER BY rank LIMIT ?"
        )
        rows = self._connection.execute(query, [match, *parameters, k]).fetchall()
        return [(int(key), -float(rank)) for key, rank in rows]

    def example_texts(self, count: int = 3, shortest: int = 12, longest: int = 60) -> list[str]:
        """A few texts spread over the store, of a length that reads well as an example query
        (the search page offers them, so that its examples come from the collection it serves)."""
        total = self._connection.execute("SELECT count(*) FROM documents WHERE length(text) BETWEEN ? AND ?", [shortest, longest]).fetchone()[0]
        examples: list[str] = []
        for part in range(count):
            row = self._connection.execute(
                f"SELECT text FROM documents WHERE length(text) BETWEEN ? AND ? ORDER BY {self._key} LIMIT 1 OFFSET ?",
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

    def has_field(self, name: str) -> bool:
        """Whether some document (deleted or not) has the metadata field ``name``."""
        return self._connection.execute("SELECT 1 FROM documents WHERE json_type(meta, ?) IS NOT NULL LIMIT 1",
                                        [f'$."{name}"']).fetchone() is not None

    def some_fields(self) -> list[str]:
        """The metadata fields of the first 10,000 documents: what an error about a field no document has suggests."""
        return [row[0] for row in self._connection.execute(
            "SELECT DISTINCT field.key FROM (SELECT meta FROM documents WHERE json_valid(meta) LIMIT 10000) AS sample, "
            "json_each(sample.meta) AS field ORDER BY 1 LIMIT 50")]

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


def _id_order(value: Any) -> tuple[int, Any]:
    """Integers before strings, each in their own order: ids of both kinds sort without a TypeError."""
    return (0, value) if isinstance(value, int) else (1, str(value))


def _bindable(ids: Iterable[Any], schema: int) -> list[Any]:
    """The ids a store could hold, as SQLite binds them: integers in range (and, in schema 2, strings); others are not there."""
    kept = []
    for value in ids:
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, np.integer)) and is_document_id(int(value)):
            kept.append(int(value))
        elif schema == 2 and isinstance(value, str):
            kept.append(value)
    return kept


def keyword_terms(text: str) -> list[str]:
    """The words FTS5's default tokenizer would index: letters and digits, lower-cased, each once."""
    return list(dict.fromkeys(re.findall(r"\w+", text.lower())))
