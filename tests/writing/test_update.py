"""Collection.add, .upsert and .remove: in place, no full rebuild, and searching sees exactly the new contents."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import numpy as np
import pytest

from semsearch import Collection, Document
from semsearch.errors import CollectionError
from semsearch.storage.layout import read_manifest

TEXTS = [
    "police find body in river",
    "council approves new budget for roads",
    "drought hits farmers in the north",
    "government announces hospital funding",
    "storm damages homes along the coast",
    "football club signs young striker",
    "bushfire threatens town near forest",
    "school teachers strike over pay",
    "new railway line opens to passengers",
    "court hears murder trial evidence",
]


# name -> (backend, build params, can add in place, can remove in place)
BACKEND_CASES = {
    "exact": ("exact", {}, True, True),
    "usearch": ("usearch", {}, True, True),
    "hnswlib": ("hnswlib", {}, True, True),
    "faiss-ivf": ("faiss", {"index": "IVF2,Flat", "nprobe": 2}, True, True),
    "faiss-hnsw": ("faiss", {"index": "HNSW16"}, True, False),
    "annoy": ("annoy", {}, False, False),
}


def documents(texts: list[str], first_id: int = 0) -> list[Document]:
    return [Document(id=first_id + i, text=text, date=datetime.date(2020, 1, 1 + i % 28)) for i, text in enumerate(texts)]


def write_corpus(path: Path, rows: list[Document]) -> Path:
    """A JSONL corpus with ids, texts and dates."""
    path.write_text("".join(json.dumps({"id": d.id, "text": d.text, "date": d.date.isoformat() if d.date else None}) + "\n" for d in rows))
    return path


def build(tmp_path: Path, encoder, backend: str = "exact", rows: list[Document] | None = None, name: str = "news.semsearch") -> Collection:
    """A collection of TEXTS (or ``rows``); ``backend`` is a name or a key of BACKEND_CASES."""
    source = write_corpus(tmp_path / f"{name}.jsonl", documents(TEXTS) if rows is None else rows)
    backend_name, params = BACKEND_CASES[backend][:2] if backend in BACKEND_CASES else (backend, {})
    return Collection.build(source, tmp_path / name, encoder=encoder, backend=backend_name, backend_params=dict(params))


def contents(collection: Collection) -> dict[int, str]:
    return {i: d.text for i, d in collection.store.get(collection.store.ids()).items()}


def ranking(collection: Collection, queries: list[str]) -> list[list[tuple[float, int]]]:
    """Every document's score for each query, best first, ties by id (insertion order differs between builds)."""
    return [sorted((-round(hit.score, 5), hit.id) for hit in hits) for hits in collection.search(queries, k=100)]


@pytest.mark.parametrize("backend", list(BACKEND_CASES))
def test_add_finds_new_documents_and_keeps_old(tmp_path: Path, fake_encoder, backend: str) -> None:
    collection = build(tmp_path, fake_encoder, backend)
    new = documents(["kangaroo escapes from zoo enclosure", "parliament debates climate bill"], first_id=100)
    stats = collection.add(new, rebuild=not BACKEND_CASES[backend][2])
    assert (stats.added, stats.replaced, stats.removed, stats.count) == (2, 0, 0, 12)
    assert len(collection) == 12
    assert collection.search("kangaroo escapes zoo", k=1)[0].id == 100
    assert collection.search("police find body in river", k=1)[0].id == 0
    reopened = Collection.open(collection.path, encoder=fake_encoder)
    assert contents(reopened) == {**dict(enumerate(TEXTS)), 100: "kangaroo escapes from zoo enclosure", 101: "parliament debates climate bill"}
    manifest = read_manifest(collection.path)
    assert manifest["generation"] == 1 and [segment["rows"] for segment in manifest["segments"]] == [len(TEXTS), 2]
    assert (collection.path / "documents.sqlite").exists(), "the build's files stay: the new documents are a segment of their own"


def test_update_gives_what_a_fresh_build_gives(tmp_path: Path, fake_encoder) -> None:
    """Exact search after add, upsert and remove equals exact search on a collection built with those contents."""
    extra = ["kangaroo escapes from zoo enclosure", "parliament debates climate bill", "storm floods coastal homes"]
    collection = build(tmp_path, fake_encoder)
    collection.add(documents(extra, first_id=10))
    collection.upsert([Document(id=3, text="hospital waiting lists grow", date=datetime.date(2021, 5, 5))])
    collection.remove([1, 7, 11])
    fresh_documents = [
        Document(id=i, text=t) for i, t in enumerate(TEXTS + extra) if i not in (1, 7, 11)
    ]
    fresh_documents = [Document(id=d.id, text="hospital waiting lists grow") if d.id == 3 else d for d in fresh_documents]
    fresh = build(tmp_path, fake_encoder, rows=fresh_documents, name="fresh.semsearch")
    assert contents(collection) == contents(fresh)
    queries = ["storm homes", "hospital", "budget roads", "zoo", "strike pay", "climate"]
    assert ranking(Collection.open(collection.path, encoder=fake_encoder), queries) == ranking(fresh, queries)


def test_add_of_an_existing_id_changes_nothing(tmp_path: Path, fake_encoder) -> None:
    collection = build(tmp_path, fake_encoder, "usearch")
    before = read_manifest(collection.path)
    with pytest.raises(CollectionError, match="document id 4 is in the collection already"):
        collection.add(documents(["a new text"], first_id=10) + documents(["x"], first_id=4))
    assert read_manifest(collection.path) == before
    assert sorted(p.name for p in collection.path.iterdir()) == sorted([*before["files"], "manifest.json", ".update.lock"])
    assert contents(Collection.open(collection.path, encoder=fake_encoder)) == dict(enumerate(TEXTS))


def test_repeated_id_in_the_input_is_an_error(tmp_path: Path, fake_encoder) -> None:
    collection = build(tmp_path, fake_encoder)
    with pytest.raises(CollectionError, match="id 50 appears twice"):
        collection.upsert([Document(id=50, text="one"), Document(id=50, text="two")])
    assert len(Collection.open(collection.path, encoder=fake_encoder)) == len(TEXTS)


@pytest.mark.parametrize("backend", list(BACKEND_CASES))
def test_upsert_replaces_the_text_and_its_vector(tmp_path: Path, fake_encoder, backend: str) -> None:
    collection = build(tmp_path, fake_encoder, backend)
    replacing = [Document(id=2, text="kangaroo escapes from zoo enclosure"), Document(id=20, text="brand new headline")]
    stats = collection.upsert(replacing, rebuild=not all(BACKEND_CASES[backend][2:]))
    assert (stats.added, stats.replaced) == (1, 1)
    assert len(collection) == len(TEXTS) + 1
    hit = collection.search("kangaroo escapes zoo", k=1)[0]
    assert (hit.id, hit.text) == (2, "kangaroo escapes from zoo enclosure")
    old_text_hits = collection.search("drought hits farmers in the north", k=len(TEXTS) + 1)
    assert [h.score for h in old_text_hits if h.id == 2][0] < 0.5, "the old vector is gone with the old text"


@pytest.mark.parametrize("backend", list(BACKEND_CASES))
def test_remove_forgets_documents(tmp_path: Path, fake_encoder, backend: str) -> None:
    collection = build(tmp_path, fake_encoder, backend)
    stats = collection.remove([0, 5, 999], rebuild=not BACKEND_CASES[backend][3])
    assert (stats.removed, stats.not_found, stats.count) == (2, (999,), 8)
    found = {hit.id for hit in collection.search(TEXTS, k=len(TEXTS))[0]}
    assert found == set(range(len(TEXTS))) - {0, 5}
    assert collection.search("police find body in river", k=1)[0].score < 0.5


def test_add_from_a_file_numbers_after_the_largest_id(tmp_path: Path, fake_encoder) -> None:
    collection = build(tmp_path, fake_encoder)
    source = tmp_path / "more.csv"
    source.write_text("publish_date,headline_text\n20210102,kangaroo escapes from zoo\n20210103,parliament debates climate bill\n")
    stats = collection.upsert(source)
    assert stats.added == 2
    assert contents(collection)[10] == "kangaroo escapes from zoo"
    assert collection.store.get([11])[11].date == datetime.date(2021, 1, 3)


def test_an_update_writes_only_its_change_and_the_old_records_go(tmp_path: Path, fake_encoder) -> None:
    collection = build(tmp_path, fake_encoder)
    before = {p.name: p.stat().st_mtime_ns for p in collection.path.iterdir() if p.is_file()}
    collection.add(documents(["one more"], first_id=50))
    collection.remove([1])
    collection.remove([2])
    names = sorted(p.name for p in collection.path.iterdir())
    assert names == sorted([*before, ".update.lock", "deleted-3.base.npy", "segment-1"]), "the first deletion record is gone"
    assert all((collection.path / name).stat().st_mtime_ns == stamp for name, stamp in before.items() if name != "manifest.json"), \
        "no file of the build is written again"
    assert np.load(collection.path / "deleted-3.base.npy").tolist() == [1, 2]
    assert json.loads((collection.path / "manifest.json").read_text())["count"] == 9


def test_an_update_reports_the_seconds_of_each_stage_once(tmp_path: Path, fake_encoder) -> None:
    collection = build(tmp_path, fake_encoder, "usearch")
    started = time.perf_counter()
    stats = collection.upsert(documents(["kangaroo escapes from zoo enclosure"], first_id=3))
    elapsed = time.perf_counter() - started
    assert set(stats.seconds) == {"check", "deletions", "embed", "store and index", "sync and switch", "delete old files"}
    assert min(stats.seconds.values()) >= 0
    assert sum(stats.seconds.values()) <= elapsed, "no time is counted twice, e.g. writing inside embedding"


def test_a_reader_opened_before_an_update_keeps_its_state_until_refresh(tmp_path: Path, fake_encoder) -> None:
    writer = build(tmp_path, fake_encoder, "usearch")
    reader = Collection.open(writer.path, encoder=fake_encoder)
    writer.remove([0])
    writer.add(documents(["kangaroo escapes from zoo enclosure"], first_id=30))
    assert reader.search("police find body in river", k=1)[0].id == 0, "old files stay readable after deletion"
    assert len(reader) == len(TEXTS)
    assert reader.refresh() is True
    assert reader.search("kangaroo escapes zoo", k=1)[0].id == 30
    assert 0 not in {hit.id for hit in reader.search("police find body in river", k=5)}
    assert reader.refresh() is False


def test_every_backend_takes_updates_and_keeps_vectors_npy_in_step(tmp_path: Path, fake_encoder, monkeypatch) -> None:
    """Annoy cannot add to a built index, but each update's documents are a new segment with an index of its own
    (here annoy's, with vectors.npy beside it: small segments are exact, so small is made 0)."""
    monkeypatch.setattr("semsearch.writing.segment_writer.SMALL_SEGMENT", 0)
    collection = build(tmp_path, fake_encoder, "annoy")
    assert (collection.path / "vectors.npy").is_file()
    stats = collection.add(documents(["kangaroo escapes from zoo enclosure"], first_id=30))
    assert stats.count == len(TEXTS) + 1
    stats = collection.remove([1, 2, 30])
    assert stats.count == len(TEXTS) - 2
    collection.add(documents(["kangaroo escapes from zoo enclosure"], first_id=30))
    assert read_manifest(collection.path)["segments"][-1]["index"] is None
    stored = np.load(collection.path / "segment-3" / "vectors.ids.npy")
    assert len(stored) == 1 and (collection.path / "segment-3" / "index.annoy").is_file()
    vectors = np.load(collection.path / "segment-3" / "vectors.npy")
    np.testing.assert_allclose(vectors.astype(np.float32), fake_encoder.encode(["kangaroo escapes from zoo enclosure"]), atol=1e-3)
    assert collection.search("kangaroo escapes zoo", k=1)[0].id == 30
    assert {hit.id for hit in collection.search("council approves budget", k=20)} == set(range(len(TEXTS))) - {1, 2} | {30}


@pytest.mark.parametrize("backend", list(BACKEND_CASES))
def test_removing_every_document_then_adding_again(tmp_path: Path, fake_encoder, backend: str) -> None:
    collection = build(tmp_path, fake_encoder, backend)
    assert collection.remove(range(len(TEXTS)), rebuild=not BACKEND_CASES[backend][3]).count == 0
    assert collection.search("police", k=3) == []
    collection.add(documents(["kangaroo escapes from zoo enclosure"], first_id=0), rebuild=not BACKEND_CASES[backend][2])
    assert [hit.id for hit in collection.search("kangaroo", k=3)] == [0]


@pytest.mark.parametrize("rebuild", [False, True])
def test_updates_and_filters_on_a_reduced_collection(tmp_path: Path, fake_encoder, rebuild: bool) -> None:
    """With --reduce the index holds reduced vectors and vectors.npy the full ones: an update changes both in step."""
    rows = [Document(id=i, text=f"{word} report number {i}", date=datetime.date(2020, 1, 1 + i % 28))
            for i, word in enumerate(["storm", "budget", "police", "drought", "election"] * 8)]
    source = write_corpus(tmp_path / "news.jsonl", rows)
    collection = Collection.build(source, tmp_path / "news.semsearch", encoder=fake_encoder, backend="usearch", reduce="pca:8")
    assert collection.manifest["reducer"]["kind"] == "pca"
    stats = collection.upsert([Document(id=3, text="kangaroo escapes from zoo enclosure", date=datetime.date(2021, 1, 1)),
                               Document(id=100, text="parliament debates climate bill", date=datetime.date(2021, 1, 2))], rebuild=rebuild)
    collection.remove([0, 1], rebuild=rebuild)
    assert (stats.added, stats.replaced, len(collection)) == (1, 1, 39)
    assert {hit.id for hit in collection.search("report", k=100)} == set(range(40)) - {0, 1} | {100}
    assert collection.search("kangaroo escapes zoo", k=1)[0].id == 3
    hits = collection.search("climate", k=5, date_from="2021-01-01")
    assert [hit.id for hit in hits][:1] == [100] and {hit.id for hit in hits} == {3, 100}
    assert 0 not in {hit.id for hit in collection.search("storm report number 0", k=40)}


def test_an_os_error_during_an_update_is_one_line_and_changes_nothing(tmp_path: Path, fake_encoder) -> None:
    collection = build(tmp_path, fake_encoder, "usearch")
    (collection.path / "segment-1").write_text("a file where the update wants its directory")
    before = read_manifest(collection.path)
    with pytest.raises(CollectionError, match="the update failed and the collection is as it was: .*(File exists|Not a directory)"):
        collection.add(documents(["kangaroo escapes from zoo enclosure"], first_id=30))
    assert read_manifest(collection.path) == before
    assert contents(Collection.open(collection.path, encoder=fake_encoder)) == dict(enumerate(TEXTS))
