"""Build, open and search collections; every damaged collection gives its documented error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from semsearch import Collection
from semsearch.errors import CollectionError, CorpusError, SemsearchError
from tests.conftest import FakeEncoder

HEADLINES = [
    "council approves new budget for roads",
    "storm damages homes along the coast",
    "government announces health funding boost",
    "farmers welcome rain after long drought",
    "police investigate bank robbery in city",
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "news.csv"
    path.write_text("publish_date,headline_text\n" + "".join(f"2003020{i + 1},{text}\n" for i, text in enumerate(HEADLINES)))
    return path


@pytest.fixture
def built(tmp_path: Path, corpus: Path, fake_encoder: FakeEncoder) -> Path:
    path = tmp_path / "news.semsearch"
    Collection.build(corpus, path, encoder=fake_encoder).close()
    return path


def test_real_headlines_real_encoder_find_their_meaning(small_real_collection: Collection) -> None:
    hits = small_real_collection.search("bushfire threatens homes", k=10)
    assert len(hits) == 10
    assert hits == sorted(hits, key=lambda hit: -hit.score)
    assert any("fire" in hit.text for hit in hits[:5])
    spanish = small_real_collection.search("incendio forestal amenaza casas", k=10)
    assert any("fire" in hit.text for hit in spanish)


def test_exact_text_is_its_own_best_hit(small_real_collection: Collection) -> None:
    document = small_real_collection.store.get([1234])[1234]
    best = small_real_collection.search(document.text, k=1)[0]
    assert best.text == document.text and best.score > 0.99


def test_batch_search_returns_one_list_per_query(small_real_collection: Collection) -> None:
    results = small_real_collection.search(["rain", "cricket", "iraq war"], k=3)
    assert [len(hits) for hits in results] == [3, 3, 3]


def test_open_reads_the_manifest_facts(built: Path, fake_encoder: FakeEncoder) -> None:
    with Collection.open(built, encoder=fake_encoder) as collection:
        facts = collection.info()
        assert facts["count"] == 5 and len(collection) == 5
        assert facts["encoder"] == {"name": "fake-hash", "argument": None, "version": "1", "dim": 64}
        assert facts["backend"]["name"] == "usearch"
        assert {"documents.sqlite", "index.usearch"} <= set(facts["files"])
        hits = collection.search("storm on the coast", k=2)
        assert hits[0].text == "storm damages homes along the coast"
        assert str(hits[0].date) == "2003-02-02"


def test_exact_backend_round_trip(tmp_path: Path, corpus: Path, fake_encoder: FakeEncoder) -> None:
    with Collection.build(corpus, tmp_path / "exact.semsearch", encoder=fake_encoder, backend="exact") as collection:
        assert collection.search("bank robbery", k=1)[0].text == "police investigate bank robbery in city"
        assert len(collection.search("bank robbery", k=50)) == 5


def test_corrupt_manifest(built: Path, fake_encoder: FakeEncoder) -> None:
    (built / "manifest.json").write_text("{ not json")
    with pytest.raises(CollectionError, match="corrupt manifest"):
        Collection.open(built, encoder=fake_encoder)


def test_wrong_checksum(built: Path, fake_encoder: FakeEncoder) -> None:
    index = built / "index.usearch"
    data = bytearray(index.read_bytes())
    data[-1] ^= 0xFF
    index.write_bytes(bytes(data))
    with pytest.raises(CollectionError, match="index.usearch: checksum does not match"):
        Collection.open(built, encoder=fake_encoder)


def test_missing_file(built: Path, fake_encoder: FakeEncoder) -> None:
    (built / "documents.sqlite").unlink()
    with pytest.raises(CollectionError, match="documents.sqlite is missing"):
        Collection.open(built, encoder=fake_encoder)


def test_format_version_from_the_future(built: Path, fake_encoder: FakeEncoder) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    manifest["format_version"] = 99
    (built / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CollectionError, match="format version 99, this semsearch reads versions 1 to 2; upgrade semsearch"):
        Collection.open(built, encoder=fake_encoder)


def test_other_encoder_is_refused(built: Path) -> None:
    with pytest.raises(CollectionError, match="was built with encoder fake-hash 1 .64 dimensions.; the query encoder is fake-hash 1 .32"):
        Collection.open(built, encoder=FakeEncoder(dim=32))


def test_not_a_collection(tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match="no such collection"):
        Collection.open(tmp_path / "absent.semsearch")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CollectionError, match="not a semsearch collection"):
        Collection.open(tmp_path / "plain")


def test_build_refuses_to_overwrite_what_is_not_a_collection(tmp_path: Path, corpus: Path, fake_encoder: FakeEncoder) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    with pytest.raises(SemsearchError, match="exists and is not a semsearch collection"):
        Collection.build(corpus, precious, encoder=fake_encoder)
    assert (precious / "thesis.txt").read_text() == "do not delete"


def test_failed_build_leaves_the_older_collection_intact(tmp_path: Path, built: Path, fake_encoder: FakeEncoder) -> None:
    before = {path.name: path.read_bytes() for path in built.iterdir()}
    broken = tmp_path / "broken.csv"
    # The bad row comes after two full batches have been embedded and written.
    rows = "".join(f"20030301,headline {i}\n" for i in range(25)) + "20030301,one,two\n"
    broken.write_text("publish_date,headline_text\n" + rows)
    with pytest.raises(CorpusError, match="line 27: expected 2 fields"):
        Collection.build(broken, built, encoder=fake_encoder, batch_size=10)
    assert {path.name: path.read_bytes() for path in built.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    with Collection.open(built, encoder=fake_encoder) as collection:
        assert len(collection) == 5


def test_rebuild_replaces_the_older_collection(tmp_path: Path, built: Path, fake_encoder: FakeEncoder) -> None:
    other = tmp_path / "other.txt"
    other.write_text("one\ntwo\nthree\n")
    Collection.build(other, built, encoder=fake_encoder).close()
    with Collection.open(built, encoder=fake_encoder) as collection:
        assert len(collection) == 3
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_duplicate_ids_are_refused(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text("id,text\n1,first\n2,second\n1,again\n")
    with pytest.raises(CollectionError, match="duplicate document id 1"):
        Collection.build(path, tmp_path / "dupes.semsearch", encoder=fake_encoder)
    assert not (tmp_path / "dupes.semsearch").exists()


def test_bad_k_and_search_parameter(built: Path, fake_encoder: FakeEncoder) -> None:
    with Collection.open(built, encoder=fake_encoder) as collection:
        with pytest.raises(SemsearchError, match="k must be at least 1"):
            collection.search("x", k=0)
        with pytest.raises(SemsearchError, match="no search parameter nprobe; it takes: expansion_search"):
            collection.search("x", nprobe=3)


def test_copied_collection_opens_elsewhere(tmp_path: Path, built: Path, fake_encoder: FakeEncoder) -> None:
    copy = tmp_path / "copy.semsearch"
    shutil.copytree(built, copy)
    with Collection.open(copy, encoder=fake_encoder) as collection:
        assert len(collection.search("rain drought", k=3)) == 3


def test_a_build_keeps_a_few_of_its_texts_as_examples_for_the_page(tmp_path, sample_csv, fake_encoder) -> None:
    import json

    from semsearch import Collection

    path = tmp_path / "c.semsearch"
    with Collection.build(sample_csv, path, encoder=fake_encoder, backend="exact", limit=300) as collection:
        examples = collection.info()["examples"]
        texts = {document.text for document in collection.iter_documents()}
    assert len(examples) == 3 and set(examples) <= texts and all(12 <= len(text) <= 60 for text in examples)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["examples"] = ["x" * 1000, {"html": "<script>"}, 7]  # a stranger's manifest
    (path / "manifest.json").write_text(json.dumps(manifest))
    with Collection.open(path, encoder=fake_encoder) as collection:
        assert collection.info()["examples"] == ["x" * 200]
