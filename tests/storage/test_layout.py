"""storage.layout: names, generations, the manifest's making, reading and checks, the update lock."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from semsearch.backends import create_index
from semsearch.backends.factory import new_index
from semsearch.errors import CollectionError
from semsearch.storage import layout
from semsearch.storage.segments import SegmentEntry
from semsearch.storage.layout import (
    BUILD_FILE_PREFIXES,
    FORMAT_VERSION,
    MANIFEST,
    data_directory,
    describe_files,
    index_entries,
    new_manifest,
    next_manifest,
    read_manifest,
    remove_unreferenced,
    update_lock,
    verify_files,
    write_manifest,
)


def test_the_build_file_prefixes_are_the_names_the_writers_use() -> None:
    assert BUILD_FILE_PREFIXES == ("documents.sqlite", "vectors.", "index.", "reducer.", "orphans.", "deleted-")
    assert create_index("exact", 4).file_name.startswith(layout.INDEX_FILE_PREFIX)


def test_a_new_manifest_reads_back_and_checks(tmp_path: Path, fake_encoder) -> None:
    (tmp_path / "index.exact").write_bytes(b"12345")
    index = create_index("exact", fake_encoder.dim)
    manifest = new_manifest(fake_encoder, index, count=5, source="corpus.csv", files=describe_files(tmp_path, ["index.exact"]))
    assert manifest["format_version"] == FORMAT_VERSION and manifest["created"] == manifest["updated"]
    assert manifest["backend"] == {"name": "exact", "params": {}} and manifest["reducer"] is None
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == json.loads(json.dumps(manifest))
    verify_files(tmp_path, manifest)
    (tmp_path / "index.exact").write_bytes(b"12346")
    with pytest.raises(CollectionError, match="checksum does not match"):
        verify_files(tmp_path, manifest)
    (tmp_path / "index.exact").write_bytes(b"1234")
    with pytest.raises(CollectionError, match="4 bytes, the manifest says 5"):
        verify_files(tmp_path, manifest, checksums=False)


def test_a_reduced_index_is_named_in_the_manifest(fake_encoder) -> None:
    entries = index_entries(new_index("exact", fake_encoder.dim, reducer="pca:4"))
    assert entries["reducer"] == {"kind": "pca", "dim": 4, "rerank": 0}


def test_the_next_manifest_is_a_new_generation_of_the_same_collection(tmp_path: Path) -> None:
    manifest = {"format_version": 1, "count": 3, "created": "2020-01-01T00:00:00+00:00", "files": {"a": {}}}
    segments = [SegmentEntry("base", "", 3, 0, 2), SegmentEntry("segment-2", "segment-2", 2, 3, 4, deleted="deleted-2.base.npy", deleted_count=1)]
    updated = next_manifest(manifest, generation=2, files={"segment-2/a": {}}, segments=segments, next_key=5, ids="integer")
    assert updated["generation"] == 2 and updated["count"] == 4 and updated["created"] == manifest["created"]
    assert updated["format_version"] == 2 and updated["next_key"] == 5 and len(updated["segments"]) == 2
    assert data_directory(tmp_path, manifest) == tmp_path


@pytest.mark.parametrize("text, problem", [
    ("{", "corrupt manifest"),
    ("[]", "expected a JSON object"),
    ('{"format_version": 99}', "format version 99"),
    ('{"format_version": 1, "encoder": {}, "backend": {}, "files": {}}', "no 'count'"),
])
def test_a_bad_manifest_is_one_line(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / MANIFEST).write_text(text)
    with pytest.raises(CollectionError, match=problem):
        read_manifest(tmp_path)


def test_only_unreferenced_generations_and_build_files_are_removed(tmp_path: Path) -> None:
    for name in ("generation-1", "generation-2", "notes"):
        (tmp_path / name).mkdir()
    for name in ("index.usearch", "documents.sqlite", "README.txt"):
        (tmp_path / name).write_text("x")
    remove_unreferenced(tmp_path, {"files": {"generation-2/index.usearch": {}}})
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["README.txt", "generation-2", "notes"]


def _hold_lock(path: str, seconds: float, started) -> None:  # noqa: ANN001 - a multiprocessing Event
    with update_lock(Path(path)):
        started.set()
        time.sleep(seconds)


def test_the_update_lock_makes_a_second_writer_wait(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    started = context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path), 1.0, started))
    holder.start()
    assert started.wait(10)
    waited = time.monotonic()
    with update_lock(tmp_path):
        waited = time.monotonic() - waited
    holder.join()
    assert waited > 0.5
