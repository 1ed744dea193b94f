"""The atomic swap of a finished directory into place, and the fsync of a set of files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semsearch.storage import atomic
from semsearch.storage.atomic import recover_directory, replace_directory, sync_files


def _directory(path: Path, contents: dict[str, str]) -> Path:
    path.mkdir()
    for name, text in contents.items():
        (path / name).write_text(text)
    return path


def test_a_new_directory_takes_the_place_of_an_old_one(tmp_path: Path) -> None:
    target = _directory(tmp_path / "news.semsearch", {"manifest.json": "old"})
    new = _directory(tmp_path / ".news.semsearch.building", {"manifest.json": "new", "index.exact": "x"})
    replace_directory(new, target)
    assert (target / "manifest.json").read_text() == "new"
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["news.semsearch"]


def test_a_new_directory_is_moved_where_there_was_none(tmp_path: Path) -> None:
    new = _directory(tmp_path / "work", {"a": "1"})
    replace_directory(new, tmp_path / "target")
    assert (tmp_path / "target" / "a").read_text() == "1" and not new.exists()


def test_without_renameat2_the_old_directory_goes_aside_then_is_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic, "_exchange", lambda first, second: False)
    target = _directory(tmp_path / "news", {"manifest.json": "old"})
    replace_directory(_directory(tmp_path / "work", {"manifest.json": "new"}), target)
    assert (target / "manifest.json").read_text() == "new"
    assert not (tmp_path / ".news.old").exists()


def test_a_crash_between_the_two_renames_is_undone_on_open(tmp_path: Path) -> None:
    aside = _directory(tmp_path / ".news.old", {"manifest.json": "old"})
    recover_directory(tmp_path / "news")
    assert (tmp_path / "news" / "manifest.json").read_text() == "old" and not aside.exists()
    recover_directory(tmp_path / "news")  # nothing to undo: nothing changes
    assert (tmp_path / "news" / "manifest.json").read_text() == "old"


def test_sync_files_syncs_the_named_files_or_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _directory(tmp_path / "generation-1", {"b": "2", "a": "1"})
    (directory / "sub").mkdir()
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda descriptor: (synced.append(descriptor), real_fsync(descriptor))[1])
    assert sync_files(directory) == ["a", "b"]
    assert len(synced) == 3  # two files and the directory
    assert sync_files(directory, ["b"]) == ["b"]
    with pytest.raises(FileNotFoundError):
        sync_files(directory, ["missing"])
