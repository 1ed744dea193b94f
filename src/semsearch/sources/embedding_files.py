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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.storage.verified import file_identity
from semsearch.sources.corpus import ReadStats, parse_date
from semsearch.documents import Document
from semsearch.encoders import DEFAULT_ENCODER, Encoder, encoder_for_manifest, get_encoder, normalise
from semsearch.errors import CorpusError
from semsearch.sources.tfrecord import SUFFIXES as TFRECORD_SUFFIXES
from semsearch.sources.tfrecord import count_records, expand_paths, nonfinite_values, read_embedding_tfrecords

PARQUET_METADATA_KEY = b"semsearch"

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
        self.batch_size = batch_size
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
            # Unit length, as every encoder's output is: the original tutorial's files are not.
            vectors = normalise(np.stack([vector for _, vector in chunk]))
            if self._dim is not None and vectors.shape[1] != self._dim:
                raise CorpusError(
                    f"{self.pattern}: vectors of {vectors.shape[1]} dimensions, the encoder makes {self._dim}; name the encoder that made them with --encoder"
                )
            self.stats.documents += len(documents)
            yield documents, vectors


def open_embedding_files(pattern: str | Path, *, batch_size: int) -> EmbeddingFiles:
    return EmbeddingFiles(pattern, batch_size=batch_size)


# -- Parquet, as semsearch beam-embed writes it --


def _parquet_encoder_spec(paths: list[Path]) -> dict[str, Any] | None:
    import pyarrow.parquet as parquet

    specs = []
    for path in paths:
        metadata = parquet.read_schema(path).metadata or {}
        if PARQUET_METADATA_KEY in metadata:
            specs.append(json.loads(metadata[PARQUET_METADATA_KEY])["encoder"])
    if not specs:
        return None
    if any(spec != specs[0] for spec in specs):
        raise CorpusError(f"{paths[0].parent}: the files were embedded with different encoders")
    return specs[0]


def _parquet_count_rows(paths: list[Path]) -> int:
    import pyarrow.parquet as parquet

    return sum(parquet.ParquetFile(path).metadata.num_rows for path in paths)


def _vectors(column: Any, path: Path, row: int) -> np.ndarray:
    """A list<float> (or fixed-size list) column as an (n, dim) float32 matrix, without Python floats."""
    import pyarrow as pa

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = np.diff(np.asarray(column.offsets))
        if len(lengths) and (lengths != lengths[0]).any():
            bad = row + int(np.argmax(lengths != lengths[0])) + 1
            raise CorpusError(f"{path}, row {bad}: an embedding of {lengths[bad - row - 1]} values, the first has {lengths[0]}")
        values = column.flatten()
    elif pa.types.is_fixed_size_list(column.type):
        values = column.flatten()
    else:
        raise CorpusError(f"{path}: column 'embedding' is {column.type}, not a list of floats")
    return np.asarray(values, dtype=np.float32).reshape(len(column), -1)


def read_parquet_embeddings(paths: list[Path]) -> Iterator[tuple[Document, np.ndarray]]:
    """Each row's document and embedding, file after file, a record batch at a time."""
    import pyarrow.parquet as parquet

    for path in paths:
        try:
            parquet_file = parquet.ParquetFile(path)
        except Exception as error:  # pyarrow raises several types for a file that is not parquet
            raise CorpusError(f"{path}: not a readable Parquet file: {error}") from None
        columns = set(parquet_file.schema_arrow.names)
        missing = sorted({"id", "text", "embedding"} - columns)
        if missing:
            raise CorpusError(f"{path}: no column {', '.join(missing)}; the columns are {', '.join(sorted(columns))}")
        row = 0
        for batch in parquet_file.iter_batches(batch_size=8192):
            vectors = _vectors(batch.column("embedding"), path, row)
            table = {name: batch.column(name).to_pylist() for name in ("id", "text", "date", "meta") if name in columns}
            finite = np.isfinite(vectors).all(axis=1)
            if not finite.all():  # NaN would be stored, then scored: "score": NaN is not JSON
                bad = int(np.argmin(finite))
                raise CorpusError(
                    f"{path}, row {row + bad + 1}: the embedding of document {table['id'][bad]} holds {nonfinite_values(vectors[bad])}; every value must be a finite number"
                )
            dates = table.get("date") or [None] * len(batch)
            metas = table.get("meta") or [None] * len(batch)
            for position, (document_id, text) in enumerate(zip(table["id"], table["text"])):
                row += 1
                try:
                    date = parse_date(dates[position])
                except ValueError as error:
                    raise CorpusError(f"{path}, row {row}: field 'date': {error}") from None
                meta = json.loads(metas[position]) if metas[position] else {}
                yield Document(id=int(document_id), text=text, date=date, meta=meta), vectors[position]


register_reader(EmbeddingFormat("parquet", (".parquet",), read_parquet_embeddings, _parquet_encoder_spec, _parquet_count_rows))


# -- TFRecord, as the original tutorial's Beam pipeline wrote it (see semsearch.sources.tfrecord) --

register_reader(EmbeddingFormat("tfrecord", TFRECORD_SUFFIXES, read_embedding_tfrecords, count_rows=count_records))
