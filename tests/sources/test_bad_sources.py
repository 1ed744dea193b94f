"""Each bad input that gave a traceback (or a wrong document) before issue 14, by name, with the line it gives now.

tests/test_input_fuzz.py generates thousands of such inputs; these are the ones it found, kept readable.
"""

from __future__ import annotations

import datetime
import gzip
import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from semsearch import Collection, read_corpus
from semsearch.cli import cli
from semsearch.documents import Document
from semsearch.errors import CollectionError, CorpusError, SemsearchError
from semsearch.sources.embedding_files import PARQUET_METADATA_KEY, EmbeddingFiles
from semsearch.sources.tfrecord import count_records, masked_crc32c, read_embedding_tfrecords
from semsearch.storage.store import DocumentStore
from tests.conftest import FakeEncoder

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a \\ud800 b"}', "line 1: field 'text': holds a lone surrogate '\\ud800' (half of a UTF-16 pair), which is not text"),
        ('{"text": "ok", "desk": "\\udc00"}', "line 1: field 'desk' holds a lone surrogate '\\udc00', which is not text"),
        ('{"text": "ok", "\\udfff": 1}', "line 1: metadata has a lone surrogate in the name '\\udfff', which is not text"),
        ('{"text": "ok", "m": ' + DEEP + "}", "line 1: invalid JSON: nested too deeply to read (metadata may nest 64 deep)"),
        ('{"text": "ok", "m": ' + "[" * 65 + "]" * 65 + "}", "line 1: field 'm' is nested more than 64 deep"),
        ('{"text": "ok", "m": NaN}', "line 1: field 'm' holds NaN, which JSON cannot hold; use null"),
        ('{"text": "ok", "m": [1, {"x": -Infinity}]}', "line 1: field 'm' holds -Infinity, which JSON cannot hold; use null"),
        ('{"text": "ok", "m": 1e400}', "line 1: field 'm' holds Infinity, which JSON cannot hold; use null"),
        ('{"text": "ok", "m": ' + "1" * 5000 + "}", "line 1: invalid JSON: Exceeds the limit (4300 digits) for integer string conversion"),
        ('{"text": "ok", "id": true}', "line 1: field 'id': True is not an id (a string or an integer)"),
        ('{"text": "ok", "id": 3.7}', "line 1: field 'id': 3.7 is not an id (a string or an integer)"),
        # '1_0' and an Arabic-Indic 3 (which int() took) are not integers: as first ids they are string ids, kept as given.
        ('{"text": "ok", "id": 1}\n{"text": "ok", "id": "1_0"}', "line 2: field 'id': '1_0' is not an integer id; the first id"),
        ('{"text": "ok", "id": 1}\n{"text": "ok", "id": "\\u0663"}', "line 2: field 'id': '\u0663' is not an integer id; the first"),
        ('{"text": "ok", "id": 9223372036854775808}', "line 1: field 'id': 9223372036854775808 is not an id from 0 to 9223372036854775807"),
        ('{"text": "ok", "id": "' + "9" * 5000 + '"}', "is not an id from 0 to 9223372036854775807"),
        ('{"text": "ok", "date": "00000101"}', "line 1: field 'date': '00000101' is not a date: year 0 is out of range"),
        ('{"text": "ok", "date": "10000-01-01"}', "line 1: field 'date': '10000-01-01' is not a date (expected YYYYMMDD or YYYY-MM-DD)"),
        ('{"text": "ok", "date": "2003-02-30"}', "line 1: field 'date': '2003-02-30' is not a date: day is out of range for month"),
        ('{"text": "ok", "date": "\\u0662\\u0660\\u0660\\u0663\\u0660\\u0662\\u0661\\u0669"}', "is not a date (expected YYYYMMDD or YYYY-MM-DD)"),
        ('{"text": "ok", "date": {"y": 2003}}', "line 1: field 'date': {'y': 2003} is not a date"),
        ('{"text": "ok", "date": true}', "line 1: field 'date': True is not a date"),
        ('{"a\\nb": "no text field"}', "line 1: no text field among 'a\\nb'; name one with --text-field"),
    ],
)
def test_jsonl_rows_that_were_tracebacks_or_wrong_are_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content + "\n" + '{"text": "a good row"}\n')
    with pytest.raises(CorpusError) as raised:
        list(read_corpus(path))
    assert str(raised.value).startswith(f"{path}, ") and message in str(raised.value) and "\n" not in str(raised.value)
    corpus = read_corpus(path, skip_bad_rows=True)
    assert [document.text for document in corpus][-1:] == ["a good row"] and corpus.stats.skipped_bad == 1


def test_ids_that_are_whole_numbers_in_any_form_are_read(tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    path.write_text('{"text": "a", "id": 7.0}\n{"text": "b", "id": " +8 "}\n{"text": "c", "id": "-0"}\n{"text": "d", "id": 9223372036854775807}\n')
    assert [document.id for document in read_corpus(path)] == [7, 8, 0, 2**63 - 1]


def test_a_lone_surrogate_is_a_bad_row_not_a_sqlite_traceback(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "broken \\ud83d half emoji"}\n')
    with pytest.raises(CorpusError, match=r"line 2: field 'text': holds a lone surrogate"):
        Collection.build(path, tmp_path / "news.semsearch", encoder=fake_encoder)
    with Collection.build(path, tmp_path / "news.semsearch", encoder=fake_encoder, skip_bad_rows=True) as collection:
        assert len(collection) == 1 and collection.build_stats.skipped_bad == 1


def test_duplicate_ids_name_both_lines(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text("id,text\n1,first\n2,second\n1,again\n")
    with pytest.raises(CollectionError) as raised:
        Collection.build(path, tmp_path / "a.semsearch", encoder=fake_encoder)
    assert str(raised.value) == f"{path}, line 4: duplicate document id 1 ({path}, line 2 has it too)"
    with pytest.raises(CollectionError) as raised:  # the first one in an earlier batch, already stored
        Collection.build(path, tmp_path / "b.semsearch", encoder=fake_encoder, batch_size=1)
    assert str(raised.value) == f"{path}, line 4: duplicate document id 1: an earlier document has it"


def test_a_refused_batch_leaves_a_store_without_a_journal_unchanged(tmp_path: Path) -> None:
    """A build's store has no journal, so SQLite cannot roll back half a batch: add checks everything first."""
    store = DocumentStore.create(tmp_path / "documents.sqlite", schema=1)
    store.add([Document(1, "one")])
    for batch in ([Document(2, "two"), Document(2, "two again")], [Document(3, "three"), Document(1, "one again")],
                  [Document(4, "four"), Document(5, "lone \udc80")], [Document(6, "six"), Document(7, "seven", meta={"x": float("nan")})],
                  [Document(8, "eight"), Document(-1, "negative")]):
        with pytest.raises(CollectionError):
            store.add(batch)
        assert store.keys().tolist() == [1]


def parquet_file(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def test_parquet_corpus_values_python_cannot_hold_are_bad_rows(tmp_path: Path) -> None:
    table = pa.table({"text": ["fine", "far future", "fine too"], "publish_date": pa.array([0, 2**50, 12_000], pa.timestamp("ms"))})
    path = parquet_file(tmp_path / "dates.parquet", table)
    with pytest.raises(CorpusError, match=r"dates\.parquet, row 2: field 'publish_date': the value cannot be read: "):
        list(read_corpus(path))
    assert [document.text for document in read_corpus(path, skip_bad_rows=True)] == ["fine", "fine too"]


def test_a_gzipped_parquet_corpus_is_read(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": ["one", "two"], "date": ["2003-02-19", None]}), buffer)
    path = tmp_path / "texts.parquet.gz"
    path.write_bytes(gzip.compress(buffer.getvalue()))
    corpus = read_corpus(path)
    assert [(d.text, d.date) for d in corpus] == [("one", datetime.date(2003, 2, 19)), ("two", None)] and corpus.count_rows() == 2


# -- embedding files: Parquet as beam-embed writes it --

FAKE4 = FakeEncoder(dim=4)


def beam_parquet(path: Path, columns: dict[str, Any], metadata: bytes | None = b"fake") -> Path:
    base: dict[str, Any] = {"id": pa.array([1], pa.int64()), "text": ["a headline"], "date": ["2003-02-19"], "meta": pa.array([None], pa.string()),
                            "embedding": pa.array([[1.0, 0.0, 0.0, 0.0]], pa.list_(pa.float32()))}
    table = pa.table({**base, **columns})
    if metadata == b"fake":
        metadata = json.dumps({"encoder": FAKE4.spec()}).encode()
    return parquet_file(path, table.replace_schema_metadata({PARQUET_METADATA_KEY: metadata} if metadata is not None else None))


def read_embeddings(pattern: Path | str, batch_size: int = 2) -> list[tuple[Document, np.ndarray]]:
    files = EmbeddingFiles(pattern, batch_size=batch_size)
    files.encoder(None)
    files.count_rows()
    return [pair for documents, vectors in files.batches(0) for pair in zip(documents, vectors)]


@pytest.mark.parametrize(
    ("columns", "metadata", "message"),
    [
        ({"id": pa.array([None], pa.int64())}, b"fake", "row 1: field 'id' is null"),
        ({"id": ["x"]}, b"fake", "column 'id' is string, not integers"),
        ({"id": [-3]}, b"fake", "row 1: field 'id': -3 is not an id from 0 to 9223372036854775807"),
        ({"id": pa.array([2**64 - 1], pa.uint64())}, b"fake", "row 1: field 'id': 18446744073709551615 is not an id from 0"),
        ({"text": pa.array([None], pa.string())}, b"fake", "row 1: field 'text' is null"),
        ({"text": [5]}, b"fake", "column 'text' is int64, not text"),
        ({"meta": ["{x"]}, b"fake", "row 1: field 'meta': not JSON: Expecting property name enclosed in double quotes"),
        ({"meta": ["[1]"]}, b"fake", "row 1: field 'meta': metadata must be a JSON object, not an array"),
        ({"meta": ['{"a": NaN}']}, b"fake", "row 1: field 'meta': field 'a' holds NaN, which JSON cannot hold; use null"),
        ({"date": ["2003-02-30"]}, b"fake", "row 1: field 'date': '2003-02-30' is not a date: day is out of range for month"),
        ({"embedding": pa.array([["a"]])}, b"fake", "column 'embedding' is list<element: string>, not a list of floats"),
        ({"embedding": pa.array([[[1.0]]])}, b"fake", "column 'embedding' is list<element: list<element: double>>, not a list of floats"),
        ({"embedding": pa.array([None], pa.list_(pa.float32()))}, b"fake", "row 1: the embedding is null"),
        ({"embedding": pa.array([[1.0, None, 0.0, 0.0]], pa.list_(pa.float32()))}, b"fake", "row 1: the embedding holds a null value"),
        ({"embedding": pa.array([[]], pa.list_(pa.float32()))}, b"fake", "row 1: the embedding is empty"),
        ({}, b"{nope", "file metadata 'semsearch': not JSON: Expecting property name enclosed in double quotes"),
        ({}, b"\xff\xfe", "file metadata 'semsearch': not JSON:"),
        ({}, b"[]", """file metadata 'semsearch': expected {"encoder": {...}}, found []"""),
        ({}, b"{}", """file metadata 'semsearch': expected {"encoder": {...}}, found {}"""),
        ({}, b'{"encoder": "fake-hash"}', "the encoder should be a JSON object with name, argument, version and dim, not 'fake-hash'"),
        ({}, b'{"encoder": {"dim": 4}}', "the encoder's name is None, not an encoder name"),
        ({}, b'{"encoder": {"name": "fake-hash", "dim": "four"}}', "the encoder's dim is 'four', not a number of dimensions from 1 to 65,536"),
        ({}, b'{"encoder": {"name": "fake-hash", "dim": 4, "version": 1}}', "the encoder's version is 1, not text or null"),
        ({}, DEEP.encode(), "file metadata 'semsearch': not JSON:"),
    ],
)
def test_embedding_parquet_that_was_a_traceback_is_one_line(tmp_path: Path, columns: dict[str, Any], metadata: bytes, message: str) -> None:
    path = beam_parquet(tmp_path / "emb-0.parquet", columns, metadata)
    with pytest.raises(CorpusError) as raised:
        read_embeddings(path)
    assert str(raised.value).startswith(f"{path}") and message in str(raised.value) and "\n" not in str(raised.value), str(raised.value)


def test_embedding_lengths_must_agree_across_batches_and_files(tmp_path: Path) -> None:
    """np.stack of a build's batch met vectors of two lengths: a ValueError traceback."""
    beam_parquet(tmp_path / "emb-0.parquet", {})
    second = beam_parquet(tmp_path / "emb-1.parquet", {"id": [2], "embedding": pa.array([[1.0, 0.0, 0.0, 0.0, 0.0]], pa.list_(pa.float32()))})
    with pytest.raises(CorpusError) as raised:
        read_embeddings(f"{tmp_path}/emb-*.parquet")
    assert str(raised.value) == f"{second}, row 1: an embedding of 5 values, that of {tmp_path / 'emb-0.parquet'}, row 1 has 4"


def test_a_truncated_embedding_file_is_one_line_when_its_encoder_is_read(tmp_path: Path) -> None:
    path = beam_parquet(tmp_path / "emb-0.parquet", {})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorpusError, match=r"emb-0\.parquet: not a readable Parquet file: "):
        EmbeddingFiles(path, batch_size=10).encoder(None)


def test_a_batch_size_past_sys_maxsize_reads_embedding_files(tmp_path: Path) -> None:
    path = beam_parquet(tmp_path / "emb-0.parquet", {})
    assert len(read_embeddings(path, batch_size=2**63)) == 1


# -- TFRecord --


def frame(record: bytes) -> bytes:
    header = struct.pack("<Q", len(record))
    return header + struct.pack("<I", masked_crc32c(header)) + record + struct.pack("<I", masked_crc32c(record))


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([b"\x08\x01"], "record 1: not a tf.train.Example: features has wire type 0, not a length-delimited value"),
        ([b"\x0a\x02\x08\x01"], "record 1: not a tf.train.Example: a feature has wire type 0, not a length-delimited value"),
        ([b"\x0a\x04\x0a\x02\x08\x01"], "record 1: not a tf.train.Example: a feature's name has wire type 0"),
        ([b"\x0a\x08\x0a\x06\x0a\x01x\x12\x01\x08"], "record 1: not a tf.train.Example: truncated"),
        ([b"\x0a\x09\x0a\x07\x0a\x01x\x12\x02\x10\x01"], "record 1: not a tf.train.Example: feature 'x' has wire type 0, not a list"),
    ],
)
def test_tfrecord_wire_types_that_were_tracebacks_are_one_line(tmp_path: Path, records: list[bytes], message: str) -> None:
    path = tmp_path / "emb.tfrecords"
    path.write_bytes(b"".join(frame(record) for record in records))
    with pytest.raises(CorpusError) as raised:
        list(read_embedding_tfrecords(path))
    assert str(raised.value).startswith(f"{path}, ") and message in str(raised.value), str(raised.value)


@pytest.mark.parametrize("length", [1 << 30, 2**40, 2**63, 2**64 - 1])
def test_a_length_the_file_cannot_hold_is_truncation_not_memory(tmp_path: Path, length: int) -> None:
    """A length with a valid checksum: 2^40 raised MemoryError, 2^64 - 1 OverflowError, and count_records ValueError."""
    header = struct.pack("<Q", length)
    for suffix, write in ((".tfrecords", lambda data: data), (".tfrecords.gz", gzip.compress)):
        path = tmp_path / f"emb{suffix}"
        path.write_bytes(write(header + struct.pack("<I", masked_crc32c(header)) + b"x" * 16))
        assert count_records([path]) in (0, 1)
        with pytest.raises(CorpusError, match=r"record 1: the file ends inside the record; it is truncated"):
            list(read_embedding_tfrecords([path]))


def test_a_negative_tfrecord_id_is_refused_when_built(tmp_path: Path) -> None:
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    def entry(key: str, feature: bytes) -> bytes:
        return field(1, field(1, key.encode()) + field(2, feature))

    negative = b"".join(bytes([0xFF]) for _ in range(9)) + b"\x01"  # -1 as a varint
    record = field(1, entry("text", field(1, field(1, b"a headline"))) + entry("embedding", field(2, field(1, np.ones(4, "<f4").tobytes())))
                   + entry("id", field(3, field(1, negative))))
    path = tmp_path / "emb.tfrecords"
    path.write_bytes(frame(record))
    with pytest.raises(CorpusError) as raised:
        read_embeddings(path)
    assert str(raised.value) == f"{path}, record 1: document id -1 is not an id from 0 to 9223372036854775807"


# -- download --


def test_a_download_address_that_is_not_a_url_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["download", "abcnews", str(tmp_path / "x.tsv"), "--url", "not a url"])
    assert result.exit_code == 1 and result.output == "Error: download of 'not a url' failed: unknown url type: 'not a url'\n", result.output


def test_errors_here_are_semsearch_errors() -> None:
    assert issubclass(CorpusError, SemsearchError) and issubclass(CollectionError, SemsearchError)
