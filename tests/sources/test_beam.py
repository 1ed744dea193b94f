"""The Apache Beam pipeline on the real DirectRunner in multi-process mode, and building from its Parquet output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Collection
from semsearch.cli import cli
from semsearch.sources.corpus import read_corpus
from semsearch.sources.embedding_files import PARQUET_METADATA_KEY, open_embedding_files
from semsearch.errors import CollectionError, CorpusError

MULTI_PROCESS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
QUERIES = ["bushfire threatens homes", "election campaign", "cricket world cup", "drought hits farmers", "desafíos globales"]


def read_shards(files: list[str]) -> tuple[np.ndarray, list[str], np.ndarray, dict]:
    import pyarrow.parquet as parquet

    tables = [parquet.read_table(file) for file in files]
    ids = np.concatenate([table.column("id").to_numpy() for table in tables])
    texts = [text for table in tables for text in table.column("text").to_pylist()]
    vectors = np.vstack([np.array(table.column("embedding").to_pylist(), dtype=np.float32) for table in tables])
    metadata = json.loads(tables[0].schema.metadata[PARQUET_METADATA_KEY])
    return ids, texts, vectors, metadata


@pytest.mark.slow
def test_beam_on_the_direct_runner_in_two_processes_matches_the_local_path(sample_csv: Path, real_encoder, tmp_path: Path) -> None:
    pytest.importorskip("apache_beam", reason="the beam extra (apache-beam) is not installed")
    from semsearch.sources.beam import run_pipeline

    limit = 2000
    files = run_pipeline(str(sample_csv), str(tmp_path / "emb" / "news"), MULTI_PROCESS, batch_size=300, limit=limit)
    assert files and all(Path(file).name.startswith("news-") and file.endswith(".parquet") for file in files)

    ids, texts, vectors, metadata = read_shards(files)
    assert sorted(ids.tolist()) == list(range(limit))  # stable corpus ids, unique across shards
    assert metadata["encoder"] == real_encoder.spec()
    documents = {document.id: document.text for document in read_corpus(sample_csv, limit=limit)}
    assert texts == [documents[int(i)] for i in ids]
    local = real_encoder.encode(texts)
    assert np.sum(local * vectors, axis=1).min() >= 0.999

    from_beam = Collection.build_from_embeddings(f"{tmp_path}/emb/news*.parquet", tmp_path / "beam.semsearch", backend="exact")
    built_locally = Collection.build(sample_csv, tmp_path / "local.semsearch", encoder=real_encoder, backend="exact", limit=limit)
    assert len(from_beam) == len(built_locally) == limit
    assert from_beam.manifest["encoder"] == built_locally.manifest["encoder"]
    for query in QUERIES:
        beam_hits, local_hits = from_beam.search(query, k=10), built_locally.search(query, k=10)
        assert [hit.id for hit in beam_hits[:5]] == [hit.id for hit in local_hits[:5]]
        np.testing.assert_allclose([hit.score for hit in beam_hits], [hit.score for hit in local_hits], atol=1e-3)
        assert [(hit.text, hit.date) for hit in beam_hits[:5]] == [(hit.text, hit.date) for hit in local_hits[:5]]


@pytest.mark.slow
def test_beam_embed_then_build_from_embeddings_on_the_command_line(tmp_path: Path) -> None:
    pytest.importorskip("apache_beam", reason="the beam extra (apache-beam) is not installed")
    prefix = tmp_path / "emb" / "news"
    embedded = CliRunner().invoke(cli, ["beam-embed", "abcnews-sample", str(prefix), "--limit", "400", "--batch-size", "100", *MULTI_PROCESS])
    assert embedded.exit_code == 0, embedded.output
    assert f"semsearch build --from-embeddings '{prefix}*.parquet'" in embedded.output
    built = CliRunner().invoke(cli, ["build", "--from-embeddings", f"{prefix}*.parquet", "-o", str(tmp_path / "news.semsearch"), "-q"])
    assert built.exit_code == 0, built.output
    assert "400 documents, usearch index" in built.output
    found = CliRunner().invoke(cli, ["search", str(tmp_path / "news.semsearch"), "iraq war", "-k", "3", "--json"])
    assert any("iraq" in hit["text"] for hit in json.loads(found.output)["hits"])


def write_parquet(path: Path, ids: list[int], vectors: np.ndarray, encoder_spec: dict | None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as parquet

    metadata = {PARQUET_METADATA_KEY: json.dumps({"encoder": encoder_spec}).encode()} if encoder_spec else None
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "text": [f"headline {i}" for i in ids],
            "date": ["2003-02-19"] * len(ids),
            "meta": [None] * len(ids),
            "embedding": pa.array(vectors.tolist(), pa.list_(pa.float32())),
        }
    ).replace_schema_metadata(metadata)
    parquet.write_table(table, path)


def test_build_from_parquet_shards_keeps_their_ids_vectors_and_encoder(fake_encoder, tmp_path: Path) -> None:
    vectors = fake_encoder.encode([f"headline {i}" for i in range(10)])
    write_parquet(tmp_path / "part-1.parquet", [100, 101, 102, 103, 104], vectors[:5], fake_encoder.spec())
    write_parquet(tmp_path / "part-0.parquet", [7, 8, 9, 10, 11], vectors[5:], fake_encoder.spec())
    collection = Collection.build_from_embeddings(f"{tmp_path}/part-*.parquet", tmp_path / "c.semsearch", encoder=fake_encoder, backend="exact")
    assert len(collection) == 10
    np.testing.assert_allclose(collection.vectors([7, 104]), vectors[[5, 4]], atol=1e-6)
    assert collection.store.get([101])[101].text == "headline 101"
    with pytest.raises(CollectionError):  # the files say fake-hash; the real encoder is another
        Collection.build_from_embeddings(f"{tmp_path}/part-*.parquet", tmp_path / "d.semsearch", encoder="use-multilingual")


def test_duplicate_ids_across_shards_and_unknown_files_are_clear_errors(fake_encoder, tmp_path: Path) -> None:
    vectors = fake_encoder.encode(["a", "b", "c", "d"])
    write_parquet(tmp_path / "x-0.parquet", [1, 2], vectors[:2], fake_encoder.spec())
    write_parquet(tmp_path / "x-1.parquet", [2, 3], vectors[2:], fake_encoder.spec())
    with pytest.raises(CollectionError, match="duplicate document id 2"):
        Collection.build_from_embeddings(f"{tmp_path}/x-*.parquet", tmp_path / "c.semsearch", encoder=fake_encoder)
    assert not (tmp_path / "c.semsearch").exists()
    (tmp_path / "emb.avro").write_bytes(b"x")
    with pytest.raises(CorpusError, match=r"no reader for \.avro files; --from-embeddings reads \.parquet"):
        open_embedding_files(f"{tmp_path}/emb.avro", batch_size=10)


def test_beam_embed_keeps_beams_log_out_of_the_way_unless_verbose(tmp_path: Path) -> None:
    """A real DirectRunner run in worker processes: its stderr holds semsearch's two lines, not Beam's fifty."""
    import subprocess
    import sys

    command = [sys.executable, "-c", "from semsearch.cli import main; main()", "beam-embed", "abcnews-sample", str(tmp_path / "emb"),
               "--limit", "40", "--batch-size", "20"]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.splitlines() == [
        f"wrote 2 Parquet files: {tmp_path / 'emb'}-*.parquet",
        f"build the collection with: semsearch build --from-embeddings '{tmp_path / 'emb'}*.parquet' -o NAME.semsearch",
    ]
    verbose = subprocess.run([*command, "-v"], capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 0 and len(verbose.stderr.splitlines()) > 10 and "sdk" in verbose.stderr.lower()
