"""Vectors embedded elsewhere, read back to build a collection without embedding again.

``semsearch build --from-embeddings 'PREFIX*.parquet' -o PATH`` picks a reader by the files'
suffix from ``READERS``. A reader turns a sorted list of files into (Document, vector) pairs;
it may also say which encoder made the vectors, so that queries use the same one. To read
another format, register it, as the TFRecord reader below is:

    register_reader(EmbeddingFormat("tfrecord", (".tfrecord", ".tfrecords"), read_embedding_tfrecords))

TFRecord (what the original tutorial's Beam pipeline wrote, ``emb-*.tfrecords``): tf.train.Example
records with ``text`` and ``embedding``; they do not say which encoder made them, so name it with
``--encoder`` (the tutorial's nnlm-en-dim128: ``--encoder tfhub:PATH``).

Parquet (what ``semsearch beam-embed`` writes): columns ``id`` (int64), ``text``, ``date``
(ISO date or null), ``meta`` (JSON, optional) and ``embedding`` (list of float32); the file's
key-value metadata ``semsearch`` holds ``{"encoder": {...}}``, the encoder's manifest spec.

Whatever the files hold, reading them gives documents and vectors or one CorpusError line naming the
file and the row (or record) and field: a null, negative or non-integer id, a null text, metadata that is
not a JSON object, an embedding that is null, empty, holds nulls, is not numbers or has another length
than the first, an encoder spec that is not ``{name, argument, version, dim}``, a damaged file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.storage.verified import file_identity
from semsearch.sources.corpus import ReadStats
from semsearch.sources.values import names, one_line, parse_date, shown
from semsearch.documents import MAX_DOCUMENT_ID, Document, is_document_id, meta_problem
from semsearch.encoders import DEFAULT_ENCODER, Encoder, encoder_for_manifest, get_encoder, normalise
from semsearch.errors import CorpusError
from semsearch.sources.tfrecord import SUFFIXES as TFRECORD_SUFFIXES
from semsearch.sources.tfrecord import count_records, expand_paths, nonfinite_values, read_embedding_tfrecords

PARQUET_METADATA_KEY = b"semsearch"
# Text encoders make a few hundred to a few thousand dimensions; a spec beyond this is a damaged file, not a model.
MAX_DIM = 65_536

ReadEmbeddings = Callable[[list[Path]], Iterator[tuple[Document, np.ndarray]]]


@dataclass(frozen=True)
class EmbeddingFormat:
    """One file type of embeddings: its suffixes, its reader, and, if the files record it, their encoder."""

    name: str
    suffixes: tuple[str, ...]
    read: ReadEmbeddings
    encoder_spec: Callable[[list[Path]], dict[str, Any] | None] = lambda paths: None
    count_rows: Callable[[list[Path]], int | None] = lambda paths: None


READERS: dict[str, EmbeddingFormat] = {}


def register_reader(embedding_format: EmbeddingFormat) -> None:
    for suffix in embedding_format.suffixes:
        READERS[suffix] = embedding_format


def _format_of(paths: list[Path], pattern: str) -> EmbeddingFormat:
    suffixes = {path.suffix.lower() for path in paths}
    unknown = sorted(suffixes - set(READERS))
    if unknown:
        raise CorpusError(f"{pattern}: no reader for {', '.join(unknown)} files; --from-embeddings reads {', '.join(sorted(READERS))}")
    formats = {READERS[suffix].name for suffix in suffixes}
    if len(formats) > 1:
        raise CorpusError(f"{pattern}: matches files of several kinds ({', '.join(sorted(formats))}); name one kind")
    return READERS[paths[0].suffix.lower()]


class EmbeddingFiles:
    """Embedding files as a build's source (see ``building.EmbeddedSource``)."""

    activity = "reading"  # then the build's second stage, "indexing", fills the index

    def __init__(self, pattern: str | Path, *, batch_size: int) -> None:
        self.pattern = str(pattern)
        self.paths = expand_paths(self.pattern)
        self.format = _format_of(self.paths, self.pattern)
        self.batch_size = min(batch_size, sys.maxsize)  # islice's limit; --batch-size takes any positive integer
        self.description = self.pattern
        self.stats = ReadStats()
        self._dim: int | None = None

    def encoder(self, given: Encoder | str | None) -> Encoder:
        """The encoder the files record (``given`` must be it), else ``given`` or the default."""
        recorded = self.format.encoder_spec(self.paths)
        if recorded is not None:
            encoder = encoder_for_manifest(recorded, self.pattern, given)
        elif isinstance(given, Encoder):
            encoder = given
        else:
            encoder = get_encoder(given or DEFAULT_ENCODER)
        self._dim = int(encoder.dim)
        return encoder

    def plan(self) -> dict[str, Any]:
        return {"source": {"pattern": self.pattern, "files": [file_identity(path) for path in self.paths]}}

    def count_rows(self) -> int | None:
        return self.format.count_rows(self.paths)

    def batches(self, skip: int) -> Iterator[tuple[list[Document], np.ndarray]]:
        pairs = self.format.read(self.paths)
        for _ in islice(pairs, skip):
            pass
        self.stats.documents = skip
        while chunk := list(islice(pairs, self.batch_size)):
            documents = [document for document, _ in chunk]
            for document in documents:  # TFRecord's int64 ids may be negative; ids are 0 to 2^63 - 1 (see documents.py)
                if not is_document_id(document.id):
                    raise CorpusError(f"{document.origin or self.pattern}: document id {document.id} is not an id from 0 to {MAX_DOCUMENT_ID}")
            lengths = [len(vector) for _, vector in chunk]
            if any(length != lengths[0] for length in lengths):  # a registered reader that does not check
                odd = next(position for position, length in enumerate(lengths) if length != lengths[0])
                raise CorpusError(f"{documents[odd].origin or self.pattern}: an embedding of {lengths[odd]} values, earlier ones have {lengths[0]}")
            # Unit length, as every encoder's output is: the original tutorial's files are not.
            vectors = normalise(np.stack([vector for _, vector in chunk]))
            if self._dim is not None and vectors.shape[1] != self._dim:
                raise CorpusError(
                    f"{documents[0].origin or self.pattern}: vectors of {vectors.shape[1]} dimensions, the encoder makes {self._dim}; "
                    "name the encoder that made them with --encoder"
                )
            self.stats.documents += len(documents)
            yield documents, vectors


def open_embedding_files(pattern: str | Path, *, batch_size: int) -> EmbeddingFiles:
    return EmbeddingFiles(pattern, batch_size=batch_size)


# -- Parquet, as semsearch beam-embed writes it --


def _parquet_file(path: Path) -> Any:
    import pyarrow.parquet as parquet

    try:
        return parquet.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a file that is not parquet
        raise CorpusError(f"{path}: not a readable Parquet file: {one_line(str(error))}") from None


def checked_encoder_spec(spec: Any, where: str) -> dict[str, Any]:
    """An encoder spec as a manifest records it, {name, argument, version, dim}, or a CorpusError saying what is wrong."""
    if not isinstance(spec, dict):
        raise CorpusError(f"{where}: the encoder should be a JSON object with name, argument, version and dim, not {shown(spec)}")
    name, argument, version, dim = (spec.get(key) for key in ("name", "argument", "version", "dim"))
    if not isinstance(name, str) or not name.strip() or ":" in name:
        raise CorpusError(f"{where}: the encoder's name is {shown(name)}, not an encoder name")
    if argument is not None and not isinstance(argument, str):
        raise CorpusError(f"{where}: the encoder's argument is {shown(argument)}, not text or null")
    if version is not None and not isinstance(version, str):
        raise CorpusError(f"{where}: the encoder's version is {shown(version)}, not text or null")
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
        raise CorpusError(f"{where}: the encoder's dim is {shown(dim)}, not a number of dimensions from 1 to {MAX_DIM:,}")
    return {"name": name, "argument": argument, "version": version, "dim": dim}


def _parquet_encoder_spec(paths: list[Path]) -> dict[str, Any] | None:
    specs = []
    for path in paths:
        metadata = _parquet_file(path).schema_arrow.metadata or {}
        if PARQUET_METADATA_KEY not in metadata:
            continue
        where = f"{path}: file metadata {PARQUET_METADATA_KEY.decode()!r}"
        try:
            recorded = json.loads(metadata[PARQUET_METADATA_KEY])
        except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
            raise CorpusError(f"{where}: not JSON: {one_line(str(error))}") from None
        if not isinstance(recorded, dict) or "encoder" not in recorded:
            raise CorpusError(f'{where}: expected {{"encoder": {{...}}}}, found {shown(recorded)}')
        specs.append(checked_encoder_spec(recorded["encoder"], where))
    if not specs:
        return None
    if any(spec != specs[0] for spec in specs):
        raise CorpusError(f"{paths[0].parent}: the files were embedded with different encoders")
    return specs[0]


def _parquet_count_rows(paths: list[Path]) -> int:
    return sum(_parquet_file(path).metadata.num_rows for path in paths)


def _check_columns(schema: Any, path: Path) -> None:
    """The columns beam-embed writes, of types that hold what they should: a CorpusError before any row is read."""
    import pyarrow as pa

    columns = set(schema.names)
    missing = sorted({"id", "text", "embedding"} - columns)
    if missing:
        raise CorpusError(f"{path}: no column {', '.join(missing)}; the columns are {names(sorted(columns, key=str))}")

    def kind(name: str) -> Any:
        field_type = schema.field(name).type
        return field_type.value_type if pa.types.is_dictionary(field_type) else field_type

    textual = (pa.types.is_string, pa.types.is_large_string)
    checks = {
        "id": (lambda t: pa.types.is_integer(t), "integers"),
        "text": (lambda t: any(test(t) for test in textual), "text"),
        "meta": (lambda t: pa.types.is_null(t) or any(test(t) for test in textual), "JSON text"),
        "embedding": (
            lambda t: (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))
            and (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)),
            "a list of floats",
        ),
    }
    for name, (fits, wanted) in checks.items():
        if name in columns and not fits(kind(name)):
            raise CorpusError(f"{path}: column {name!r} is {schema.field(name).type}, not {wanted}")


def _vectors(column: Any, path: Path, row: int) -> np.ndarray:
    """A list<float> (or fixed-size list) column as an (n, dim) float32 matrix, without Python floats."""
    if column.null_count:
        bad = row + column.is_null().to_pylist().index(True) + 1
        raise CorpusError(f"{path}, row {bad}: the embedding is null")
    if hasattr(column, "offsets"):
        lengths = np.diff(np.asarray(column.offsets))
        if len(lengths) and (lengths != lengths[0]).any():
            bad = row + int(np.argmax(lengths != lengths[0])) + 1
            raise CorpusError(f"{path}, row {bad}: an embedding of {lengths[bad - row - 1]} values, the first has {lengths[0]}")
    values = column.flatten()
    if values.null_count:
        width = len(values) // max(len(column), 1)
        bad = row + values.is_null().to_pylist().index(True) // max(width, 1) + 1
        raise CorpusError(f"{path}, row {bad}: the embedding holds a null value")
    return np.asarray(values, dtype=np.float32).reshape(len(column), -1)


def _meta(value: Any, where: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    try:
        meta = json.loads(value)
    except (ValueError, RecursionError) as error:
        raise CorpusError(f"{where}: field 'meta': not JSON: {one_line(str(error))}") from None
    if (problem := meta_problem(meta)) is not None:
        raise CorpusError(f"{where}: field 'meta': {problem}")
    return meta


def read_parquet_embeddings(paths: list[Path]) -> Iterator[tuple[Document, np.ndarray]]:
    """Each row's document and embedding, file after file, a record batch at a time; every embedding of the
    length of the first."""
    dim: tuple[int, str] | None = None  # the first embedding's length and where it was
    for path in paths:
        parquet_file = _parquet_file(path)
        schema = parquet_file.schema_arrow
        _check_columns(schema, path)
        columns = [name for name in ("id", "text", "date", "meta", "embedding") if name in schema.names]
        batches = parquet_file.iter_batches(batch_size=8192, columns=columns)
        row = 0
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception as error:  # damaged data: pyarrow raises several types
                raise CorpusError(f"{path}, row {row + 1}: the file cannot be read from here: {one_line(str(error))}") from None
            vectors = _vectors(batch.column("embedding"), path, row)
            if len(batch) and vectors.shape[1] == 0:
                raise CorpusError(f"{path}, row {row + 1}: the embedding is empty")
            if len(batch) and dim is None:
                dim = (vectors.shape[1], f"{path}, row {row + 1}")
            if len(batch) and dim is not None and vectors.shape[1] != dim[0]:
                raise CorpusError(f"{path}, row {row + 1}: an embedding of {vectors.shape[1]} values, that of {dim[1]} has {dim[0]}")
            table: dict[str, list[Any]] = {}
            for name in ("id", "text", "date", "meta"):
                if name not in schema.names:
                    table[name] = [None] * len(batch)
                    continue
                try:
                    table[name] = batch.column(name).to_pylist()
                except Exception:  # a date pyarrow cannot give as Python's (a timestamp past year 9999, say): find whose
                    table[name] = _values_or_row_error(batch.column(name), name, path, row)
            finite = np.isfinite(vectors).all(axis=1)
            if not finite.all():  # NaN would be stored, then scored: "score": NaN is not JSON
                bad = int(np.argmin(finite))
                raise CorpusError(
                    f"{path}, row {row + bad + 1}: the embedding of document {table['id'][bad]} holds {nonfinite_values(vectors[bad])}; every value must be a finite number"
                )
            for position, (document_id, text, date, meta) in enumerate(zip(table["id"], table["text"], table["date"], table["meta"])):
                row += 1
                where = f"{path}, row {row}"
                if document_id is None:
                    raise CorpusError(f"{where}: field 'id' is null")
                if not is_document_id(document_id):
                    raise CorpusError(f"{where}: field 'id': {shown(document_id)} is not an id from 0 to {MAX_DOCUMENT_ID}")
                if text is None:
                    raise CorpusError(f"{where}: field 'text' is null")
                try:
                    parsed_date = parse_date(date)
                except ValueError as error:
                    raise CorpusError(f"{where}: field 'date': {error}") from None
                yield Document(id=int(document_id), text=text, date=parsed_date, meta=_meta(meta, where), origin=where), vectors[position]


def _values_or_row_error(column: Any, name: str, path: Path, row: int) -> list[Any]:
    values = []
    for position in range(len(column)):
        try:
            values.append(column[position].as_py())
        except Exception as error:  # pyarrow's and Python's types for a value out of Python's range
            raise CorpusError(f"{path}, row {row + position + 1}: field {name!r}: the value cannot be read: {one_line(str(error))}") from None
    return values


register_reader(EmbeddingFormat("parquet", (".parquet",), read_parquet_embeddings, _parquet_encoder_spec, _parquet_count_rows))


# -- TFRecord, as the original tutorial's Beam pipeline wrote it (see semsearch.sources.tfrecord) --

register_reader(EmbeddingFormat("tfrecord", TFRECORD_SUFFIXES, read_embedding_tfrecords, count_rows=count_records))
