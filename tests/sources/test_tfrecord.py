"""The tutorial's embedding files: TFRecord shards of tf.train.Example{text, embedding}, written here by TensorFlow
exactly as the tutorial's Beam pipeline wrote them, read back by semsearch without TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Collection
from semsearch.cli import cli
from semsearch.sources.corpus import read_corpus
from semsearch.errors import CorpusError
from semsearch.sources.tfrecord import count_records, parse_example, read_embedding_tfrecords, read_records

tf = pytest.importorskip("tensorflow", reason="the tests write TFRecord files with TensorFlow, from the tfhub extra")

from tests.encoders.tiny_tf_models import save_hashed_words  # noqa: E402

DIM = 8
HEADLINES = [
    "aba decides against community broadcasting licence",
    "act fire witnesses must be aware of defamation",
    "a g calls for infrastructure protection summit",
    "air nz staff in aust strike for pay rise",
    "air nz strike to affect australian travellers",
    "ambitious olsson wins triple jump",
    "antic delighted with record breaking barca",
    "aussie qualifier stosur wastes four memphis match",
    "überraschung: café déjà vu",  # not ASCII: UTF-8 must survive
    "australia is locked into war timetable opp",
]


def example(text: str, embedding: np.ndarray, **extra: tf.train.Feature) -> bytes:
    """The tutorial's to_tf_example: text as a bytes_list, embedding as a float_list."""
    features = {
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])),
        "embedding": tf.train.Feature(float_list=tf.train.FloatList(value=embedding.tolist())),
        **extra,
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


def write_shards(directory: Path, shards: int = 3, compression: str = "", suffix: str = ".tfrecords") -> np.ndarray:
    """``emb-0000i-of-0000n.tfrecords`` as Beam's WriteToTFRecord(file_path_prefix='emb', file_name_suffix=...) names them."""
    vectors = np.random.default_rng(3).normal(size=(len(HEADLINES), DIM)).astype(np.float32)
    per_shard = -(-len(HEADLINES) // shards)
    for shard in range(shards):
        path = directory / f"emb-{shard:05d}-of-{shards:05d}{suffix}"
        with tf.io.TFRecordWriter(str(path), options=tf.io.TFRecordOptions(compression_type=compression)) as writer:
            for row in range(shard * per_shard, min(len(HEADLINES), (shard + 1) * per_shard)):
                writer.write(example(HEADLINES[row], vectors[row]))
    return vectors


def test_reads_the_tutorials_shards_in_order(tmp_path: Path) -> None:
    vectors = write_shards(tmp_path)
    records = list(read_embedding_tfrecords(str(tmp_path / "emb-*.tfrecords")))
    assert [document.text for document, _ in records] == HEADLINES
    assert [document.id for document, _ in records] == list(range(len(HEADLINES)))
    np.testing.assert_array_equal(np.stack([vector for _, vector in records]), vectors)
    assert records[0][1].dtype == np.float32


def test_count_records_reads_only_the_headers(tmp_path: Path) -> None:
    write_shards(tmp_path)
    assert count_records(sorted(tmp_path.glob("emb-*.tfrecords"))) == len(HEADLINES)


def test_build_from_the_tutorials_files_with_the_tfhub_model_that_made_them(tmp_path: Path, sample_csv: Path) -> None:
    """The tutorial's whole path: a TF-Hub model embeds headlines into emb-*.tfrecords (raw vectors, not unit
    length); semsearch indexes those files and answers queries with the same model."""
    model = tmp_path / "model"
    module = save_hashed_words(model)
    texts = [document.text for document in read_corpus(sample_csv, limit=300)]
    vectors = module(tf.constant(texts)).numpy()
    for shard in range(3):
        with tf.io.TFRecordWriter(str(tmp_path / f"emb-{shard:05d}-of-00003.tfrecords")) as writer:
            for row in range(shard * 100, (shard + 1) * 100):
                writer.write(example(texts[row], vectors[row]))

    path = tmp_path / "tutorial.semsearch"
    pattern = str(tmp_path / "emb-*.tfrecords")
    built = CliRunner().invoke(cli, ["build", "--from-embeddings", pattern, "-o", str(path), "--encoder", f"tfhub:{model}", "--backend", "exact", "-q"])
    assert built.exit_code == 0, built.output
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["count"] == 300 and manifest["encoder"]["argument"] == str(model)

    with Collection.open(path, trust_encoder=True) as collection:  # the model is ours, so we trust it
        for row in (0, 150, 299):
            top = collection.search(texts[row], k=1)[0]
            assert top.text == texts[row] and top.score == pytest.approx(1.0, abs=1e-4)

    wrong = CliRunner().invoke(cli, ["build", "--from-embeddings", pattern, "-o", str(tmp_path / "wrong.semsearch"), "-q"])
    assert wrong.exit_code == 1
    assert "vectors of 16 dimensions, the encoder makes 512; name the encoder that made them with --encoder" in wrong.output


def test_gzip_compressed_shards(tmp_path: Path) -> None:
    vectors = write_shards(tmp_path, shards=2, compression="GZIP", suffix=".tfrecords.gz")
    records = list(read_embedding_tfrecords(tmp_path / "emb-00001-of-00002.tfrecords.gz"))
    assert [document.text for document, _ in records] == HEADLINES[5:]
    np.testing.assert_array_equal(records[0][1], vectors[5])


def test_id_and_date_features_are_used_when_present(tmp_path: Path) -> None:
    path = tmp_path / "emb.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(example("first", np.ones(DIM, np.float32),
                             id=tf.train.Feature(int64_list=tf.train.Int64List(value=[2**40])),
                             date=tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"20030219"]))))
        writer.write(example("second", np.ones(DIM, np.float32),
                             id=tf.train.Feature(int64_list=tf.train.Int64List(value=[-7]))))
    (first, _), (second, _) = read_embedding_tfrecords(path)
    assert (first.id, first.date.isoformat(), second.id, second.date) == (2**40, "2003-02-19", -7, None)


def test_parse_example_agrees_with_tensorflow(tmp_path: Path) -> None:
    data = example("a headline", np.arange(DIM, dtype=np.float32),
                   counts=tf.train.Feature(int64_list=tf.train.Int64List(value=[0, 1, 300, -1])))
    parsed = parse_example(data)
    reference = tf.io.parse_single_example(data, {
        "text": tf.io.FixedLenFeature([], tf.string),
        "embedding": tf.io.FixedLenFeature([DIM], tf.float32),
        "counts": tf.io.FixedLenFeature([4], tf.int64),
    })
    assert parsed["text"] == [reference["text"].numpy()]
    np.testing.assert_array_equal(parsed["embedding"], reference["embedding"].numpy())
    np.testing.assert_array_equal(parsed["counts"], reference["counts"].numpy())


def test_damage_is_found_and_located(tmp_path: Path) -> None:
    write_shards(tmp_path, shards=1)
    path = tmp_path / "emb-00000-of-00001.tfrecords"
    data = bytearray(path.read_bytes())
    record_length = 8 + 4 + len(example(HEADLINES[0], np.zeros(DIM, np.float32))) + 4

    truncated = tmp_path / "truncated.tfrecords"
    truncated.write_bytes(bytes(data[: record_length + 20]))
    with pytest.raises(CorpusError, match=r"truncated.tfrecords, record 2: the file ends inside the record; it is truncated"):
        list(read_embedding_tfrecords(truncated))

    flipped = tmp_path / "flipped.tfrecords"
    data[record_length + 30] ^= 0xFF
    flipped.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=r"flipped.tfrecords, record 2: the record's checksum does not match"):
        list(read_embedding_tfrecords(flipped))

    not_tfrecord = tmp_path / "headlines.tfrecords"
    not_tfrecord.write_text("publish_date,headline_text\n20030219,aba decides against\n")
    with pytest.raises(CorpusError, match="record 1: the length's checksum does not match; not a TFRecord file"):
        list(read_records(not_tfrecord))


def test_wrong_features_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "emb.tfrecords"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(example("fine", np.zeros(DIM, np.float32)))
        writer.write(example("shorter", np.zeros(DIM - 1, np.float32)))
    with pytest.raises(CorpusError, match="record 2: feature 'embedding' has 7 values, earlier records 8"):
        list(read_embedding_tfrecords(path))
    with pytest.raises(CorpusError, match="record 1: no feature 'vector'; the record has embedding, text"):
        list(read_embedding_tfrecords(path, embedding_feature="vector"))
    with pytest.raises(CorpusError, match="missing-\\*.tfrecords: no such file"):
        list(read_embedding_tfrecords(str(tmp_path / "missing-*.tfrecords")))
