"""Read a corpus file as a stream of Documents: txt, csv, tsv, jsonl and parquet, optionally gzipped.

Memory is bounded by one row, never by the file. Every error names the file, the
line (or, for parquet, the row) and what was wrong, so a user can fix it in an
editor; with ``skip_bad_rows`` the reader skips such rows and counts them instead.

Whatever the bytes, a read gives documents or one CorpusError line (tests/test_input_fuzz.py):
text with a lone surrogate (a JSON escape such as "\\ud800", half a UTF-16 pair) is a bad row, not
replaced; metadata must be a JSON object of JSON values, without NaN or Infinity and nested at
most ``MAX_META_DEPTH`` deep; ids are integers from 0 to 2^63 - 1 (not booleans, not 2.5).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from semsearch.documents import MAX_DOCUMENT_ID, Document, id_problem, is_document_id, lone_surrogate, meta_problem
from semsearch.errors import CorpusError
from semsearch.sources.values import integer_id, names, one_line, parse_date, shown
from semsearch.sources.rows import ReadStats, TextSeen, _BadRow, _open_binary, _parquet_records, _pick_field, _raw_lines

FORMATS = {
    ".txt": "txt",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
# Column names tried in order when the caller does not name one; the first fit the ABC files.
TEXT_FIELDS = ("headline_text", "text", "headline", "title", "sentence", "content", "body")
DATE_FIELDS = ("publish_date", "date", "published", "pubdate")
ID_FIELDS = ("id",)

# Tried, in this order, when a csv's header has no comma.
SNIFFED_DELIMITERS = (";", "\t", "|")
log = logging.getLogger(__name__)

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
def detect_format(path: Path) -> str:
    """The corpus format from the file name: ``headlines.csv.gz`` is csv."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    known = ", ".join(sorted(FORMATS))
    raise CorpusError(f"{path}: cannot tell the format from the file name; use one of {known} or pass --format")


class Corpus:
    """An iterable of Documents from one file; iterate once per pass, read ``stats`` after."""

    def __init__(
        self,
        path: str | Path,
        *,
        format: str | None = None,
        text_field: str | None = None,
        date_field: str | None = None,
        id_field: str | None = None,
        skip_bad_rows: bool = False,
        limit: int | None = None,
        dedupe: bool = False,
        delimiter: str | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            is_file = self.path.is_file()
        except OSError as error:  # a name too long, say
            raise CorpusError(f"{self.path}: cannot be read: {error.strerror or error}") from None
        if not is_file:
            raise CorpusError(f"{self.path}: no such file")
        self.format = format or detect_format(self.path)
        if self.format not in set(FORMATS.values()):
            raise CorpusError(f"{self.path}: unknown format {shown(self.format)}")
        self.text_field = text_field
        self.date_field = date_field
        self.id_field = id_field
        self.skip_bad_rows = skip_bad_rows
        self.limit = limit
        self.dedupe = dedupe
        if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
            raise CorpusError(f"--delimiter {shown(delimiter)}: a delimiter is one character, not a quote or a line break")
        # csv and tsv only: the one given, else tsv's tab, else sniffed from a csv's header (see _delimiter).
        self.delimiter = delimiter
        # Rows without an id are numbered from here: 0 for a build, after the largest id for an update.
        self.first_id = 0
        # "integer" or "string": the kind of every id, set by the first id read (or, for an update, the collection's).
        self.id_kind: str | None = None
        self.stats = ReadStats()
        self._line = 0
        self._id_column: str | None = None

    def count_rows(self) -> int:
        """A quick upper bound on the number of documents, for progress bars."""
        if self.format == "parquet":
            with self._parquet_file() as parquet_file:
                rows = parquet_file.metadata.num_rows
        else:
            rows = 0
            with _open_binary(self.path) as stream:
                for raw in _raw_lines(stream, self.path):
                    rows += 1
            if self.format in ("csv", "tsv"):
                rows -= 1
        return max(0, min(rows, self.limit) if self.limit is not None else rows)

    def __iter__(self) -> Iterator[Document]:
        self.stats = ReadStats()
        rows = {
            "txt": self._txt_rows,
            "csv": self._delimited_rows,
            "tsv": self._delimited_rows,
            "jsonl": self._jsonl_rows,
            "parquet": self._parquet_rows,
        }[self.format]()
        seen = TextSeen() if self.dedupe else None
        for row in rows:
            if row is None:
                continue
            if self.limit is not None and self.stats.documents >= self.limit:
                return
            if seen is not None and seen.repeat(row.text):
                self.stats.skipped_duplicate += 1
                continue
            self.stats.documents += 1
            yield row

    # -- one generator per format; each yields a Document, or None for a skipped row --

    def _where(self, unit: str = "line") -> str:
        return f"{self.path}, {unit} {self._line}"

    def _bad(self, message: str, unit: str = "line") -> None:
        """Skip and count a bad row, or stop the read with an error that says where it is."""
        if not self.skip_bad_rows:
            raise CorpusError(f"{self._where(unit)}: {message}")
        self.stats.skipped_bad += 1

    def _decoded_lines(self) -> Iterator[str]:
        with _open_binary(self.path) as stream:
            self._line = 0
            for raw in _raw_lines(stream, self.path):
                self._line += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    self._bad(f"byte {raw[error.start]:#04x} at column {error.start + 1} is not UTF-8")
                    continue
                if self._line == 1:
                    line = line.removeprefix("\ufeff")
                yield line

    def _make_document(self, document_id: int | str, text: Any, date: Any, meta: dict[str, Any], field_names: tuple[str, str], unit: str = "line") -> Document | None:
        """Shared by every format: empty text is skipped and counted, a bad date or id is a bad row."""
        if text is None or not str(text).strip():
            self.stats.skipped_empty += 1
            return None
        try:
            parsed_date = parse_date(date)
        except ValueError as error:
            raise _BadRow(f"field {field_names[1]!r}: {error}") from None
        return Document(id=document_id, text=str(text).strip(), date=parsed_date, meta=meta, origin=self._where(unit))

    def _document_id(self, value: Any) -> int | str:
        """The row's id: integers while the first id was one (or the collection's are), else the text as given."""
        if self.id_field is None and value is None:
            if self.id_kind == "string":
                raise _BadRow(f"no {self._id_column or 'id'} field; the collection's ids are strings, so each document needs one")
            return self.first_id + self.stats.documents
        document_id = integer_id(value)
        kind = self.id_kind or ("integer" if document_id is not None else "string")
        if kind == "string":
            if isinstance(value, (dict, list, bool)) or value is None or isinstance(value, float) and not value.is_integer():
                raise _BadRow(f"field {self._id_column!r}: {shown(value)} is not an id (a string or an integer)")
            text = value if isinstance(value, str) else str(document_id)
            if (problem := id_problem(text, strings=True)) is not None:
                raise _BadRow(f"field {self._id_column!r}: {problem}")
            self.id_kind = kind  # the first id read decides, once it is one
            return text
        if document_id is None:
            raise _BadRow(f"field {self._id_column!r}: {shown(value)} is not an integer id; the first id was an integer, so "
                          "every id must be (a corpus whose first id is text keeps every id as text)")
        if not is_document_id(document_id):
            raise _BadRow(f"field {self._id_column!r}: {shown(value)} is not an id from 0 to {MAX_DOCUMENT_ID}")
        self.id_kind = kind
        return document_id

    def _txt_rows(self) -> Iterator[Document | None]:
        for line in self._decoded_lines():
            yield self._make_document(self.first_id + self.stats.documents, line.strip(), None, {}, ("text", "date"))

    def _delimiter(self, header_line: str) -> str:
        """The delimiter given, else tsv's tab; for csv, a comma unless the header has none and another
        common delimiter (``;``, a tab, ``|``) instead: a semicolon file (Excel's in much of Europe)."""
        if self.delimiter is not None:
            return self.delimiter
        if self.format == "tsv":
            return "\t"
        if "," in header_line:
            return ","
        counts = {candidate: header_line.count(candidate) for candidate in SNIFFED_DELIMITERS}
        best = max(counts, key=lambda candidate: counts[candidate])
        return best if counts[best] else ","

    def _delimited_rows(self) -> Iterator[Document | None]:
        lines = self._decoded_lines()
        first = next(lines, None)
        if first is None:
            return
        delimiter = self._delimiter(first)
        reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise CorpusError(f"{self._where()}: the header cannot be read: {error}") from None
        where = f"{self.path}, line 1"
        text_column = _pick_field(header, self.text_field, TEXT_FIELDS, "text", where)
        if text_column is None:
            if len(header) == 1:
                text_column = header[0]
                log.warning("%s: the file reads as one column, %s, so every line is one text; if its fields are "
                            "separated by something else, say so with --delimiter", self.path, shown(header[0]))
            else:
                raise CorpusError(
                    f"{where}: no text column among {names(header)}; name one with --text-field"
                )
        date_column = _pick_field(header, self.date_field, DATE_FIELDS, "date", where)
        self._id_column = _pick_field(header, self.id_field, ID_FIELDS, "id", where)
        positions = {name: index for index, name in enumerate(header)}
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                self._bad(f"malformed {self.format.upper()} row: {error}")
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                self.stats.skipped_empty += 1
                continue
            if len(row) != len(header):
                self._bad(f"expected {len(header)} fields ({names(header)}), found {len(row)}")
                continue
            values = dict(zip(header, row))
            meta = {name: value for name, value in values.items() if name not in (text_column, date_column, self._id_column)}
            try:
                document_id = self._document_id(values[self._id_column] if self._id_column else None)
                yield self._make_document(
                    document_id, row[positions[text_column]], values.get(date_column or ""), meta, (text_column, date_column or "")
                )
            except _BadRow as error:
                self._bad(str(error))

    def _jsonl_rows(self) -> Iterator[Document | None]:
        for line in self._decoded_lines():
            if not line.strip():
                self.stats.skipped_empty += 1
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                self._bad(f"invalid JSON: {error.msg} at column {error.colno}")
                continue
            except ValueError as error:  # an integer of more than 4,300 digits
                self._bad(f"invalid JSON: {one_line(str(error))}")
                continue
            except RecursionError:
                self._bad("invalid JSON: nested too deeply to read (metadata may nest 64 deep)")
                continue
            if not isinstance(record, dict):
                self._bad(f"expected a JSON object, found {type(record).__name__}")
                continue
            yield self._record_document(record, "line")

    @contextlib.contextmanager
    def _parquet_file(self) -> Iterator[Any]:
        """The file as pyarrow's ParquetFile (a .parquet.gz is read through gzip); a CorpusError if it is not Parquet."""
        import pyarrow.parquet as parquet

        with contextlib.ExitStack() as stack:
            source: Any = stack.enter_context(_open_binary(self.path)) if self.path.suffix.lower() == ".gz" else self.path
            try:
                parquet_file = parquet.ParquetFile(source)
            except Exception as error:  # pyarrow raises several types for a file that is not parquet, gzip others
                raise CorpusError(f"{self.path}: not a readable Parquet file: {one_line(str(error))}") from None
            stack.callback(parquet_file.close)
            yield parquet_file

    def _parquet_rows(self) -> Iterator[Document | None]:
        self._line = 0
        with self._parquet_file() as parquet_file:
            batches = parquet_file.iter_batches(batch_size=8192)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except Exception as error:  # damaged data: pyarrow's errors, or gzip's through the file object
                    raise CorpusError(f"{self.path}, row {self._line + 1}: the file cannot be read from here: {one_line(str(error))}") from None
                for record in _parquet_records(batch):
                    self._line += 1
                    if isinstance(record, _BadRow):
                        self._bad(str(record), "row")
                        continue
                    yield self._record_document(record, "row")

    def _record_document(self, record: dict[str, Any], unit: str) -> Document | None:
        """A JSON object or a parquet row: named fields, the rest kept as metadata."""
        where = self._where(unit)
        text_column = _pick_field(record, self.text_field, TEXT_FIELDS, "text", where)
        if text_column is None:
            self._bad(f"no text field among {names(record)}; name one with --text-field", unit)
            return None
        date_column = _pick_field(record, self.date_field, DATE_FIELDS, "date", where) if self.date_field is None else self.date_field
        self._id_column = _pick_field(record, self.id_field, ID_FIELDS, "id", where) if self.id_field is None else self.id_field
        meta = {name: value for name, value in record.items() if name not in (text_column, date_column, self._id_column)}
        try:
            document_id = self._document_id(record.get(self._id_column) if self._id_column else None)
            text = record[text_column]
            if text is not None and not isinstance(text, str):
                raise _BadRow(f"field {text_column!r}: expected text, found {type(text).__name__}")
            if text is not None and (surrogate := lone_surrogate(text)) is not None:
                raise _BadRow(f"field {text_column!r}: holds a lone surrogate {surrogate!r} (half of a UTF-16 pair), which is not text")
            if (problem := meta_problem(meta)) is not None:
                raise _BadRow(problem)
            return self._make_document(document_id, text, record.get(date_column) if date_column else None, meta, (text_column, date_column or ""), unit)
        except _BadRow as error:
            self._bad(str(error), unit)
            return None


def read_corpus(path: str | Path, **options: Any) -> Corpus:
    """Open a corpus for streaming; see ``Corpus`` for the options."""
    return Corpus(path, **options)
