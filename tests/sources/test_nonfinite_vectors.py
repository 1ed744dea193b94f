"""Embedding files with NaN or infinite values are refused while they are read, naming the file, the row and the
document: stored, such a vector scores NaN, which `search --json` prints as bare NaN (not JSON) and the server answers 500."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Collection
from semsearch.cli import cli
from semsearch.errors import CorpusError
from semsearch.sources.tfrecord import masked_crc32c
from tests.sources.test_beam import write_parquet


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_build_from_parquet_with_a_nonfinite_vector_is_a_one_line_error(fake_encoder, tmp_path: Path, bad: float) -> None:
    """Parquet as beam-embed writes it: a good shard, then one whose second row holds the bad value."""
    vectors = fake_encoder.encode([f"headline {i}" for i in range(6)])
    vectors[4, 7] = bad
    write_parquet(tmp_path / "emb-0.parquet", [10, 11, 12], vectors[:3], fake_encoder.spec())
    write_parquet(tmp_path / "emb-1.parquet", [13, 14, 15], vectors[3:], fake_encoder.spec())
    output = tmp_path / "news.semsearch"
    result = CliRunner().invoke(cli, ["build", "--from-embeddings", f"{tmp_path}/emb-*.parquet", "-o", str(output), "-q", "--backend", "exact"])
    assert result.exit_code == 1, result.output
    kind = "NaN" if np.isnan(bad) else "inf"
    assert result.output == f"Error: {tmp_path / 'emb-1.parquet'}, row 2: the embedding of document 14 holds {kind}; every value must be a finite number\n"
    assert not output.exists(), "a refused build leaves no collection"


def test_build_from_finite_parquet_vectors_still_works(fake_encoder, tmp_path: Path) -> None:
    vectors = fake_encoder.encode([f"headline {i}" for i in range(3)])
    write_parquet(tmp_path / "emb-0.parquet", [10, 11, 12], vectors, fake_encoder.spec())
    result = CliRunner().invoke(cli, ["build", "--from-embeddings", f"{tmp_path}/emb-*.parquet", "-o", str(tmp_path / "ok.semsearch"), "-q", "--backend", "exact"])
    assert result.exit_code == 0, result.output


def tfrecord_example(text: str, embedding: np.ndarray) -> bytes:
    """A tf.train.Example with a bytes_list 'text' and a packed float_list 'embedding', in protobuf wire format."""

    def field(number: int, payload: bytes) -> bytes:  # length-delimited: wire type 2
        length, size = b"", len(payload)
        while True:
            length += bytes([(size & 0x7F) | (0x80 if size > 0x7F else 0)])
            size >>= 7
            if not size:
                break
        return bytes([number << 3 | 2]) + length + payload

    def entry(key: str, feature: bytes) -> bytes:
        return field(1, field(1, key.encode()) + field(2, feature))

    features = entry("text", field(1, field(1, text.encode()))) + entry("embedding", field(2, field(1, embedding.astype("<f4").tobytes())))
    return field(1, features)


def write_tfrecords(path: Path, records: list[bytes]) -> None:
    with path.open("wb") as stream:
        for record in records:
            header = struct.pack("<Q", len(record))
            stream.write(header + struct.pack("<I", masked_crc32c(header)) + record + struct.pack("<I", masked_crc32c(record)))


def test_build_from_tfrecords_with_a_nan_vector_is_a_one_line_error(fake_encoder, tmp_path: Path) -> None:
    texts = ["flood warning issued", "drought hits farmers", "cricket world cup"]
    vectors = fake_encoder.encode(texts)
    vectors[2, 0] = np.nan
    write_tfrecords(tmp_path / "emb-00000-of-00001.tfrecords", [tfrecord_example(text, vector) for text, vector in zip(texts, vectors)])
    with pytest.raises(CorpusError) as raised:
        Collection.build_from_embeddings(f"{tmp_path}/emb-*.tfrecords", tmp_path / "news.semsearch", encoder=fake_encoder, backend="exact")
    message = str(raised.value)
    assert message == f"{tmp_path / 'emb-00000-of-00001.tfrecords'}, record 3: feature 'embedding' of document 2 holds NaN; every value must be a finite number"
    assert not (tmp_path / "news.semsearch").exists()

    vectors[2, 0] = 0.5  # the same file with finite values builds: the records above are well formed
    write_tfrecords(tmp_path / "emb-00000-of-00001.tfrecords", [tfrecord_example(text, vector) for text, vector in zip(texts, vectors)])
    with Collection.build_from_embeddings(f"{tmp_path}/emb-*.tfrecords", tmp_path / "news.semsearch", encoder=fake_encoder, backend="exact") as collection:
        assert len(collection) == 3 and collection.search("flood warning", k=1)[0].text == "flood warning issued"
