"""What every corpus format's reader shares: counts of what was skipped, repeats seen, raw lines, field choice, bad rows."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from semsearch.errors import CorpusError
from semsearch.sources.values import names, one_line, shown

@dataclass
class ReadStats:
    """What a read skipped, so a build can report it."""

    documents: int = 0
    skipped_empty: int = 0
    skipped_bad: int = 0
    skipped_duplicate: int = 0


class TextSeen:
    """Remembers texts by a 64-bit hash, about 70 bytes each, so deduplicating a million headlines
    costs tens of megabytes; the chance that any two of a million different texts share a hash is 3 in 10^8."""

    def __init__(self) -> None:
        self._hashes: set[int] = set()

    def repeat(self, text: str) -> bool:
        """True when this exact text was seen before; remembers it otherwise."""
        digest = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
        if digest in self._hashes:
            return True
        self._hashes.add(digest)
        return False


class _BadRow(Exception):
    """A row that cannot become a Document; turned into a CorpusError or skipped."""


def _open_binary(path: Path) -> BinaryIO:
    try:
        if path.suffix.lower() == ".gz":
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return path.open("rb")
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read: {error.strerror or error}") from None


def _raw_lines(stream: BinaryIO, path: Path) -> Iterator[bytes]:
    """The lines of a file; a damaged or fake .gz is a CorpusError, not a traceback from gzip or zlib."""
    try:
        yield from stream
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise CorpusError(f"{path}: not a readable gzip file: {one_line(str(error))}") from None
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read: {error.strerror or error}") from None


def _pick_field(columns: Iterable[str], named: str | None, candidates: tuple[str, ...], role: str, where: str) -> str | None:
    columns = list(columns)
    if named is not None:
        if named not in columns:
            raise CorpusError(f"{where}: no {role} column {shown(named)}; the columns are {names(columns)}")
        return named
    lowered = {column.lower(): column for column in columns if isinstance(column, str)}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    return None




def _parquet_records(batch: Any) -> Iterator[dict[str, Any] | _BadRow]:
    """The rows of a record batch as dicts; a row pyarrow cannot give as Python values (a timestamp past
    year 9999, say) as a _BadRow naming its field, so that it can be skipped like any bad row."""
    import pyarrow as pa

    unreadable = (ValueError, OverflowError, TypeError, ArithmeticError, NotImplementedError, pa.ArrowException)
    try:
        records = batch.to_pylist()
    except unreadable:
        records = None
    if records is not None:
        yield from records
        return
    for position in range(batch.num_rows):
        record: dict[str, Any] = {}
        for name, column in zip(batch.schema.names, batch.columns):
            try:
                record[name] = column[position].as_py()
            except unreadable as error:
                yield _BadRow(f"field {name!r}: the value cannot be read: {one_line(str(error))}")
                break
        else:
            yield record
