"""A collection's documents (and, if asked, vectors) written out as JSONL, CSV or Parquet, streaming.

The documents are read in id order a page at a time and written as they come, so exporting a
million headlines holds one page in memory, never the collection. The output reads back with
``semsearch build`` (id, text and date columns by those names; the rest is metadata):

- JSONL: ``{"id", "text", "date", ...metadata fields, "vector"?}``, values as they are;
- CSV and Parquet: columns id, text, date, then one column per metadata field (its value as
  text: strings as they are, numbers and nested values as JSON), then ``vector`` (a JSON list
  in CSV, a list of float32 in Parquet).

A metadata field named like a column (id, text, date, vector) is written as ``meta.NAME``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from semsearch.documents import Document
from semsearch.errors import SemsearchError

FORMATS = ("jsonl", "csv", "parquet")
COLUMNS = ("id", "text", "date")
PAGE = 1_000
VectorLookup = Callable[[list[Any]], np.ndarray]  # documents' ids to their vectors


def _field(name: str) -> str:
    return f"meta.{name}" if name in (*COLUMNS, "vector") else name


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _pages(documents: Iterable[Document]) -> Iterator[list[Document]]:
    page: list[Document] = []
    for document in documents:
        page.append(document)
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def _vectors(page: list[Document], vectors_of: VectorLookup | None) -> list[list[float]] | None:
    if vectors_of is None:
        return None
    return np.asarray(vectors_of([document.id for document in page]), dtype=np.float32).tolist()


def write_jsonl(stream: IO[str], documents: Iterable[Document], vectors_of: VectorLookup | None) -> int:
    count = 0
    for page in _pages(documents):
        vectors = _vectors(page, vectors_of)
        for position, document in enumerate(page):
            record: dict[str, Any] = {"id": document.id, "text": document.text, "date": document.date.isoformat() if document.date else None}
            record.update({_field(name): value for name, value in document.meta.items()})
            if vectors is not None:
                record["vector"] = vectors[position]
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += len(page)
    return count


def _row(document: Document, fields: list[str]) -> list[Any]:
    return [document.id, document.text, document.date.isoformat() if document.date else None,
            *(_as_text(document.meta.get(name)) for name in fields)]


def write_csv(stream: IO[str], documents: Iterable[Document], fields: list[str], vectors_of: VectorLookup | None) -> int:
    writer = csv.writer(stream)
    writer.writerow([*COLUMNS, *map(_field, fields), *(["vector"] if vectors_of else [])])
    count = 0
    for page in _pages(documents):
        vectors = _vectors(page, vectors_of)
        for position, document in enumerate(page):
            writer.writerow([*_row(document, fields), *([json.dumps(vectors[position])] if vectors is not None else [])])
        count += len(page)
    return count


def write_parquet(path: Path, documents: Iterable[Document], fields: list[str], vectors_of: VectorLookup | None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [pa.field("id", pa.int64()), pa.field("text", pa.string()), pa.field("date", pa.string()),
               *(pa.field(_field(name), pa.string()) for name in fields)]
    if vectors_of is not None:
        columns.append(pa.field("vector", pa.list_(pa.float32())))
    schema = pa.schema(columns)
    count = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for page in _pages(documents):
            rows = [_row(document, fields) for document in page]
            arrays: list[Any] = [list(column) for column in zip(*rows)]
            if vectors_of is not None:
                arrays.append(_vectors(page, vectors_of))
            writer.write_table(pa.Table.from_arrays([pa.array(values, type=field.type) for values, field in zip(arrays, schema)], schema=schema))
            count += len(page)
    return count


def export_documents(destination: Path | IO[str], format: str, documents: Iterable[Document], fields: list[str],
                     vectors_of: VectorLookup | None) -> int:
    """Write ``documents`` to ``destination`` (a path, or a text stream for JSONL and CSV); the count written.

    To a path, the file is written under a temporary name and renamed when complete, so a
    failed export leaves no half file where the finished one would be.
    """
    if format not in FORMATS:
        raise SemsearchError(f"no export format {format!r}; choose one of {', '.join(FORMATS)}")
    if not isinstance(destination, Path):
        if format == "parquet":
            raise SemsearchError("Parquet is written to a file: give an output path (-o FILE.parquet)")
        return write_jsonl(destination, documents, vectors_of) if format == "jsonl" else write_csv(destination, documents, fields, vectors_of)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        if format == "parquet":
            count = write_parquet(temporary, documents, fields, vectors_of)
        else:
            with temporary.open("w", encoding="utf-8", newline="") as stream:
                count = write_jsonl(stream, documents, vectors_of) if format == "jsonl" else write_csv(stream, documents, fields, vectors_of)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    return count
