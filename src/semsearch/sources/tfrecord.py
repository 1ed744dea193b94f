"""Read the original tutorial's embedding files: TFRecord files of tf.train.Example records with a
``text`` (bytes) and an ``embedding`` (floats) feature, as its Beam pipeline wrote them
(``emb-00000-of-00004.tfrecords``), without TensorFlow.

A TFRecord file is a sequence of records, each framed as: length (uint64, little-endian), the
masked CRC-32C of those 8 bytes, the record, the masked CRC-32C of the record. Both checksums are
verified, so a truncated or damaged file is an error that names the file and the record, never a
silently wrong index. tf.train.Example is a small protobuf message, decoded here from the wire format.

Whatever the bytes (flipped, cut short, a length of 2^64 with a valid checksum, a feature of the wrong
kind or wire type), a read gives documents or one CorpusError line naming the file and the record.
"""

from __future__ import annotations

import datetime
import glob
import gzip
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from semsearch.sources.values import names, one_line, parse_date
from semsearch.documents import Document
from semsearch.errors import CorpusError

SUFFIXES = (".tfrecord", ".tfrecords")
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8
_CHUNK = 1 << 24  # a gzipped record is read in pieces of this size, so a damaged length cannot allocate more than the file holds
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)

Feature = list[bytes] | np.ndarray  # bytes_list values, or a float32/int64 array


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C, rotated right by 15 bits and offset, so a CRC of CRCs is not trivial."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _open(path: Path) -> BinaryIO:
    try:
        if path.suffix.lower() == ".gz":  # Beam's WriteToTFRecord with compression GZIP
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return path.open("rb")
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read: {error.strerror or error}") from None


def _remaining(stream: BinaryIO) -> int | None:
    """Bytes left in a plain file; None for a gzipped one, whose length is not known without reading it."""
    if isinstance(stream, gzip.GzipFile):
        return None
    return os.fstat(stream.fileno()).st_size - stream.tell()


def _read(stream: BinaryIO, length: int, remaining: int | None) -> bytes:
    """Up to ``length`` bytes; never more memory than the file holds, whatever the length says."""
    if remaining is not None:
        return stream.read(min(length, remaining))
    pieces, wanted = [], length
    while wanted > 0 and (piece := stream.read(min(wanted, _CHUNK))):
        pieces.append(piece)
        wanted -= len(piece)
    return b"".join(pieces)


def read_records(path: Path) -> Iterator[bytes]:
    """The records of one TFRecord file, checksums verified."""
    with _open(path) as stream:
        number = 0
        try:
            while header := stream.read(_LENGTH.size):
                number += 1
                where = f"{path}, record {number}"
                if len(header) < _LENGTH.size or len(crc := stream.read(_CRC.size)) < _CRC.size:
                    raise CorpusError(f"{where}: the file ends inside a record header; it is truncated")
                if masked_crc32c(header) != _CRC.unpack(crc)[0]:
                    raise CorpusError(f"{where}: the length's checksum does not match; not a TFRecord file, or damaged")
                (length,) = _LENGTH.unpack(header)
                data = _read(stream, length, _remaining(stream))
                crc = stream.read(_CRC.size)
                if len(data) < length or len(crc) < _CRC.size:
                    raise CorpusError(f"{where}: the file ends inside the record; it is truncated")
                if masked_crc32c(data) != _CRC.unpack(crc)[0]:
                    raise CorpusError(f"{where}: the record's checksum does not match; the file is damaged")
                yield data
        except _GZIP_ERRORS as error:
            raise CorpusError(f"{path}, record {number}: not a readable gzip file: {one_line(str(error))}") from None


# -- protobuf wire format, just enough for tf.train.Example --


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: an int for varints, bytes for the rest."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
        elif wire_type == 1:
            value, position = data[position : position + 8], position + 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
        elif wire_type == 5:
            value, position = data[position : position + 4], position + 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        if position > len(data):
            raise ValueError("truncated field")
        yield number, wire_type, value


def _messages(data: bytes, number: int, what: str) -> Iterator[bytes]:
    """The values of field ``number``, which must be length-delimited (a message, bytes or a packed array)."""
    for found, wire_type, value in _fields(data):
        if found != number:
            continue
        if wire_type != 2:
            raise ValueError(f"{what} has wire type {wire_type}, not a length-delimited value")
        yield value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _feature(data: bytes, name: str) -> Feature:
    """A tf.train.Feature: oneof bytes_list (1), float_list (2), int64_list (3); each a repeated field 1."""
    for kind, wire_type, payload in _fields(data):
        if kind not in (1, 2, 3):
            continue
        if wire_type != 2:
            raise ValueError(f"feature {name!r} has wire type {wire_type}, not a list")
        if kind == 1:
            return list(_messages(payload, 1, f"a value of feature {name!r}"))
        if kind == 2:  # packed (wire type 2) as TensorFlow writes it, or one fixed32 per value
            chunks = []
            for number, value_type, value in _fields(payload):
                if number != 1:
                    continue
                if value_type not in (2, 5) or len(value) % 4:
                    raise ValueError(f"feature {name!r}: a float_list value of wire type {value_type} and {len(value)} bytes")
                chunks.append(value)
            return np.frombuffer(b"".join(chunks), dtype="<f4").astype(np.float32)
        values: list[int] = []
        for number, value_type, value in _fields(payload):
            if number != 1:
                continue
            if value_type == 2:
                position = 0
                while position < len(value):
                    item, position = _varint(value, position)
                    values.append(_signed64(item))
            elif value_type == 0:
                values.append(_signed64(value))
            else:
                raise ValueError(f"feature {name!r}: an int64_list value of wire type {value_type}")
        return np.array(values, dtype=np.int64)
    return []


def parse_example(data: bytes) -> dict[str, Feature]:
    """tf.train.Example{features: Features{feature: map<string, Feature>}} as a dict of feature name to values."""
    features: dict[str, Feature] = {}
    for features_message in _messages(data, 1, "features"):
        for entry in _messages(features_message, 1, "a feature"):
            key, value = b"", b""
            for field, wire_type, payload in _fields(entry):
                if field in (1, 2) and wire_type != 2:
                    raise ValueError(f"a feature's {'name' if field == 1 else 'value'} has wire type {wire_type}")
                if field == 1:
                    key = payload
                elif field == 2:
                    value = payload
            name = key.decode("utf-8")
            features[name] = _feature(value, name)
    return features


# -- the tutorial's files --


def expand_paths(patterns: str | Path | Iterable[str | Path]) -> list[Path]:
    """Files named directly or by a glob (``'emb-*.tfrecords'``), sorted, so shards come in order."""
    if isinstance(patterns, (str, Path)):
        patterns = [patterns]
    paths: list[Path] = []
    for pattern in patterns:
        try:
            matches = sorted(glob.glob(str(pattern)))
        except (OSError, ValueError):  # a NUL byte, a name too long
            matches = []
        if not matches:
            raise CorpusError(f"{pattern}: no such file")
        for match in matches:
            if not os.path.isfile(match):
                raise CorpusError(f"{match}: not a file")
            paths.append(Path(match))
    return paths


def _text(values: Feature, where: str, name: str) -> str:
    if not isinstance(values, list) or len(values) != 1:
        raise CorpusError(f"{where}: feature {name!r} should hold one bytes value")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(f"{where}: feature {name!r}: byte {values[0][error.start]:#04x} is not UTF-8") from None


def nonfinite_values(vector: np.ndarray) -> str:
    """What an embedding that is not all finite numbers holds: "NaN", "inf" or "NaN and inf"."""
    kinds = [name for name, present in (("NaN", np.isnan(vector).any()), ("inf", np.isinf(vector).any())) if present]
    return " and ".join(kinds) or "no non-finite value"


def count_records(paths: list[Path]) -> int:
    """The number of records, from their length headers alone (a seek past each record), for progress bars."""
    total = 0
    for path in paths:
        with _open(path) as stream:
            try:
                while len(header := stream.read(_LENGTH.size)) == _LENGTH.size:
                    skip = _CRC.size + _LENGTH.unpack(header)[0] + _CRC.size
                    remaining = _remaining(stream)
                    if remaining is not None and skip > remaining:
                        break  # a damaged or truncated file: reading it will say where
                    stream.seek(skip, 1)
                    total += 1
            except (*_GZIP_ERRORS, OSError, OverflowError, ValueError):  # ValueError: an offset past what seek takes
                pass  # counted as far as it could be; reading it will say what is wrong
    return total


def read_embedding_tfrecords(
    patterns: str | Path | list[Path],
    *,
    text_feature: str = "text",
    embedding_feature: str = "embedding",
    id_feature: str = "id",
    date_feature: str = "date",
) -> Iterator[tuple[Document, np.ndarray]]:
    """Each record's document and its embedding (float32, as stored), file after file.

    ``patterns`` is a file, a glob such as ``'emb-*.tfrecords'``, or the list of files in order.

    Ids are the ``id`` feature (int64) when records have one, else the record's number across all
    files from 0. A ``date`` feature (bytes, YYYY-MM-DD or YYYYMMDD) is kept when present. Every
    embedding must have the dimension of the first.
    """
    number = 0
    dim: int | None = None
    for path in expand_paths(patterns) if isinstance(patterns, (str, Path)) else patterns:
        for index, record in enumerate(read_records(path), start=1):
            where = f"{path}, record {index}"
            try:
                features = parse_example(record)
            except (ValueError, UnicodeDecodeError) as error:
                raise CorpusError(f"{where}: not a tf.train.Example: {one_line(str(error))}") from None
            for name in (text_feature, embedding_feature):
                if name not in features:
                    raise CorpusError(f"{where}: no feature {name!r}; the record has {names(sorted(features)) if features else 'none'}")
            vector = features[embedding_feature]
            if not isinstance(vector, np.ndarray) or vector.dtype != np.float32:
                raise CorpusError(f"{where}: feature {embedding_feature!r} should be a float_list")
            if not len(vector):
                raise CorpusError(f"{where}: feature {embedding_feature!r} is empty")
            if dim is None:
                dim = len(vector)
            elif len(vector) != dim:
                raise CorpusError(f"{where}: feature {embedding_feature!r} has {len(vector)} values, earlier records {dim}")
            document_id = number
            if id_feature in features:
                ids = features[id_feature]
                if not isinstance(ids, np.ndarray) or ids.dtype != np.int64 or len(ids) != 1:
                    raise CorpusError(f"{where}: feature {id_feature!r} should hold one int64")
                document_id = int(ids[0])
            date: datetime.date | None = None
            if date_feature in features:
                try:
                    date = parse_date(_text(features[date_feature], where, date_feature))
                except ValueError as error:
                    raise CorpusError(f"{where}: feature {date_feature!r}: {error}") from None
            if not np.isfinite(vector).all():  # NaN would be stored, then scored: "score": NaN is not JSON
                raise CorpusError(
                    f"{where}: feature {embedding_feature!r} of document {document_id} holds {nonfinite_values(vector)}; every value must be a finite number"
                )
            text = _text(features[text_feature], where, text_feature)
            number += 1
            yield Document(id=document_id, text=text, date=date, origin=where), vector
