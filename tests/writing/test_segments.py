"""Segmented collections (format 2): string ids, updates as segments and deletions, the merge policy, compaction.

Each test checks the collection against a model of what it must hold (a dict of id to text), through
every reader: search, get, count, list, and a fresh open.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from semsearch import Collection, Document
from semsearch.cli import cli
from semsearch.errors import CollectionError, CorpusError
from semsearch.storage.layout import read_manifest
from semsearch.writing import merging

WORDS = ["storm", "budget", "police", "drought", "election", "cricket", "river", "hospital", "school", "railway", "court", "bushfire"]
DATA = Path(__file__).parent.parent / "data"


def text_of(number: int) -> str:
    """A distinct text per number, so that each document is the best hit for its own text."""
    return f"{WORDS[number % 12]} {WORDS[(number // 12) % 12]} {WORDS[(number // 144) % 12]} report {number}"


def write_jsonl(path: Path, rows: dict) -> Path:
    path.write_text("".join(json.dumps({"id": key, "text": text}) + "\n" for key, text in rows.items()), encoding="utf-8")
    return path


def assert_holds(collection: Collection, model: dict, encoder) -> None:
    """The collection holds exactly ``model``: by count, listing, get, search for each text, and opened afresh."""
    assert len(collection) == collection.count() == len(model)
    assert {d.id: d.text for d in collection.iter_documents()} == model
    assert {d.id: d.text for d in collection.get(list(model) + ["nobody", 10**9])} == model
    for document_id, text in list(model.items())[:15]:
        assert collection.search(text, k=1)[0].id == document_id
    hits = collection.search("report", k=len(model) + 5) if model else []
    assert sorted(map(str, (hit.id for hit in hits))) == sorted(map(str, model)), "no deleted or replaced document is ever a hit"
    with Collection.open(collection.path, encoder=encoder) as reopened:
        assert {d.id: d.text for d in reopened.iter_documents()} == model


def test_string_ids_are_kept_as_given_everywhere(tmp_path: Path, fake_encoder) -> None:
    model = {"art-1": text_of(1), "007": text_of(7), "Art-1": text_of(2), "ABC/2003/02/19": text_of(3)}
    collection = Collection.build(write_jsonl(tmp_path / "news.jsonl", model), tmp_path / "news.semsearch", encoder=fake_encoder)
    assert collection.id_kind == "string" and collection.info()["ids"] == "string"
    assert_holds(collection, model, fake_encoder)
    assert collection.similar("007", k=1)[0].id != "007"
    assert collection.remove(["007", "7", "missing"]).not_found == ("7", "missing")
    del model["007"]
    collection.upsert([Document(id="art-1", text=text_of(50)), Document(id="new one", text=text_of(51))])
    model.update({"art-1": text_of(50), "new one": text_of(51)})
    assert_holds(collection, model, fake_encoder)
    with pytest.raises(CollectionError, match="document id 5 is an integer, but the collection's ids are strings"):
        collection.add([Document(id=5, text="a number among strings")])
    exported = tmp_path / "out.jsonl"
    collection.export(exported)
    assert {json.loads(line)["id"] for line in exported.read_text().splitlines()} == set(model)
    result = CliRunner().invoke(cli, ["get", str(collection.path), "art-1", "new one"])
    assert result.exit_code == 0 and [json.loads(line)["id"] for line in result.output.splitlines()] == ["art-1", "new one"]
    assert CliRunner().invoke(cli, ["remove", str(collection.path), "--id", "Art-1"]).exit_code == 0
    del model["Art-1"]
    assert_holds(Collection.open(collection.path, encoder=fake_encoder), model, fake_encoder)


def test_a_corpus_whose_first_id_is_an_integer_keeps_integers(tmp_path: Path, fake_encoder) -> None:
    source = tmp_path / "news.jsonl"
    source.write_text('{"id": 1, "text": "one"}\n{"id": "art-2", "text": "two"}\n')
    with pytest.raises(CorpusError, match="line 2: field 'id': 'art-2' is not an integer id; the first id was an integer"):
        Collection.build(source, tmp_path / "news.semsearch", encoder=fake_encoder)


def test_twenty_alternating_adds_and_removes_give_exactly_the_documents_expected(tmp_path: Path, fake_encoder) -> None:
    chooser = random.Random(7)
    model = {number: text_of(number) for number in range(60)}
    collection = Collection.build(write_jsonl(tmp_path / "news.jsonl", model), tmp_path / "news.semsearch", encoder=fake_encoder,
                                  backend="usearch")
    next_number = 1_000
    for step in range(20):
        if step % 2 == 0:  # add new ones and replace some old ones
            replaced = chooser.sample(sorted(model), 3)
            added = {next_number + i: text_of(next_number + i) for i in range(5)}
            next_number += 5
            changes = {**added, **{number: text_of(number + 5_000) for number in replaced}}
            stats = collection.upsert([Document(id=key, text=text) for key, text in changes.items()])
            assert (stats.added, stats.replaced) == (5, 3)
            model.update(changes)
        else:
            gone = chooser.sample(sorted(model), 4)
            assert collection.remove(gone + [999_999]).removed == 4
            for number in gone:
                del model[number]
        assert len(collection.segments) <= merging.MAX_SEGMENTS
    assert_holds(collection, model, fake_encoder)
    assert collection.compact() > 1
    assert len(collection.segments) == 1 and not collection.segments[0].has_deletions
    assert_holds(collection, model, fake_encoder)
    names = sorted(entry.name for entry in collection.path.iterdir())
    assert names == [".update.lock", "manifest.json", collection.segments[0].entry.directory], "compaction leaves only its segment"


def test_the_merge_policy_bounds_the_segments_and_merges_the_small_ones(tmp_path: Path, fake_encoder) -> None:
    model = {number: text_of(number) for number in range(40)}
    collection = Collection.build(write_jsonl(tmp_path / "news.jsonl", model), tmp_path / "news.semsearch", encoder=fake_encoder)
    counts = []
    for step in range(14):
        stats = collection.add([Document(id=100 + step, text=text_of(100 + step))])
        model[100 + step] = text_of(100 + step)
        counts.append(stats.segments)
    assert max(counts) == merging.MAX_SEGMENTS and min(counts[10:]) < merging.MAX_SEGMENTS, counts
    assert collection.segments[0].entry.name == "base", "the build's segment is not merged by the policy"
    assert_holds(collection, model, fake_encoder)


def test_filters_still_give_k_hits_with_deletions_in_every_segment(tmp_path: Path, fake_encoder) -> None:
    rows = [Document(id=number, text=text_of(number), meta={"desk": "sport" if number % 3 == 0 else "news"}) for number in range(300)]
    source = tmp_path / "news.jsonl"
    source.write_text("".join(json.dumps({"id": d.id, "text": d.text, "desk": d.meta["desk"]}) + "\n" for d in rows))
    collection = Collection.build(source, tmp_path / "news.semsearch", encoder=fake_encoder, backend="usearch")
    collection.upsert([Document(id=1_000 + n, text=text_of(1_000 + n), meta={"desk": "sport"}) for n in range(30)])
    collection.remove([n for n in range(0, 300, 3) if n % 2 == 0] + [1_000, 1_002])
    sport = {d.id for d in collection.iter_documents(where={"desk": "sport"})}
    assert len(sport) == 100 - 50 + 28 == collection.count(where={"desk": "sport"})
    hits = collection.search("report", k=40, where={"desk": "sport"})
    assert len(hits) == 40 and {hit.id for hit in hits} <= sport
    everything = collection.search("report", k=len(sport) + 10, where={"desk": "sport"})
    assert {hit.id for hit in everything} == sport


def test_a_version_1_collection_opens_and_its_first_update_keeps_its_files(tmp_path: Path, fake_encoder) -> None:
    old = DATA / "format-v1"
    candidates = sorted(p for p in old.iterdir() if (p / "manifest.json").is_file())
    if not candidates:
        pytest.skip("no format-1 collection in tests/data/format-v1")
    path = tmp_path / candidates[0].name
    shutil.copytree(candidates[0], path)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    with Collection.open(path, encoder=fake_encoder) as collection:
        before = {d.id: d.text for d in collection.iter_documents()}
        stamps = {name: (path / name).stat().st_mtime_ns for name in manifest["files"]}
        first, new_id = min(before), max(before) + 1
        collection.remove([first])
        collection.upsert([Document(id=new_id, text="kangaroo escapes from zoo enclosure")])
        del before[first]
        before[new_id] = "kangaroo escapes from zoo enclosure"
        assert {d.id: d.text for d in collection.iter_documents()} == before
    updated = read_manifest(path)
    assert updated["format_version"] == 2 and updated["segments"][0]["store"] == 1
    assert all((path / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items()), "the version-1 files are not rewritten"


@pytest.mark.parametrize("change, problem", [
    (lambda m: m["segments"][0].update(first_key=5, rows=m["segments"][0]["rows"]), None),
    (lambda m: m["segments"].append(dict(m["segments"][0])), "repeats the name or the directory"),
    (lambda m: m.update(next_key=1), "overlap another segment's or reach next_key"),
    (lambda m: m.update(ids="uuid"), "ids must be one of integer, string"),
    (lambda m: m["segments"][0].update(directory="../elsewhere"), "must be '' \\(the top of the collection\\), segment-N"),
    (lambda m: m["segments"][0].update(deleted="deleted-9.base.npy", deleted_count=1), "names a deletion file the manifest does not list"),
    (lambda m: m["segments"][0].update(index="annoy"), "must be null \\(the collection's backend\\) or 'exact'"),
    (lambda m: m.update(segments=[]), "must be a list of 1 to"),
])
def test_a_crafted_segment_list_is_one_line(tmp_path: Path, fake_encoder, change, problem) -> None:
    model = {number: text_of(number) for number in range(20)}
    collection = Collection.build(write_jsonl(tmp_path / "news.jsonl", model), tmp_path / "news.semsearch", encoder=fake_encoder)
    collection.close()
    manifest = json.loads((collection.path / "manifest.json").read_text())
    change(manifest)
    (collection.path / "manifest.json").write_text(json.dumps(manifest))
    if problem is None:
        Collection.open(collection.path, encoder=fake_encoder).close()
        return
    with pytest.raises(CollectionError, match=problem):
        Collection.open(collection.path, encoder=fake_encoder)


@pytest.mark.parametrize("payload, problem", [
    (np.array([3, 1], dtype="<i8"), "not distinct, ascending keys"),
    (np.array([1, 1], dtype="<i8"), "not distinct, ascending keys"),
    (np.array([1, 10**6], dtype="<i8"), "not distinct, ascending keys"),
    (np.array([1.0, 2.0]), "a deletion record of float64"),
    (np.array([1, 2, 3], dtype="<i8"), "the manifest says 2 keys"),
    (b"not an npy file at all", "not a deletion record"),
])
def test_a_crafted_deletion_record_is_one_line(tmp_path: Path, fake_encoder, payload, problem) -> None:
    model = {number: text_of(number) for number in range(20)}
    collection = Collection.build(write_jsonl(tmp_path / "news.jsonl", model), tmp_path / "news.semsearch", encoder=fake_encoder)
    collection.remove([4, 5])
    collection.close()
    [record] = [p for p in collection.path.iterdir() if p.name.startswith("deleted-")]
    if isinstance(payload, bytes):
        record.write_bytes(payload)
    else:
        with record.open("wb") as stream:
            np.save(stream, payload, allow_pickle=False)
    manifest = json.loads((collection.path / "manifest.json").read_text())
    from semsearch.storage.layout import file_digest

    manifest["files"][record.name] = {"size": record.stat().st_size, "sha256": file_digest(record)}
    (collection.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CollectionError, match=problem):
        Collection.open(collection.path, encoder=fake_encoder)


def test_search_parameters_go_to_the_backend_not_to_small_segments(tmp_path: Path, fake_encoder) -> None:
    model = {number: text_of(number) for number in range(50)}
    collection = Collection.build(write_jsonl(tmp_path / "news.jsonl", model), tmp_path / "news.semsearch", encoder=fake_encoder,
                                  backend="usearch")
    for step in range(3):
        collection.add([Document(id=100 + step, text=text_of(100 + step))])
    units = collection.store.semantic_units(None)
    assert len(units) == 2 and units[-1].is_small, "the three small segments are searched as one group"
    assert collection.search(text_of(101), k=1, expansion_search=64)[0].id == 101
    with pytest.raises(Exception, match="expansion"):
        collection.search(text_of(101), k=1, expansion_search="many")
