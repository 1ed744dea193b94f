"""Opening hashes a file once; a file written since, even back to its old size and mtime, is hashed again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semsearch import Collection
from semsearch import manifest as manifest_module
from semsearch.errors import CollectionError
from semsearch.storage.verified import VerifiedFiles
from tests.conftest import FakeEncoder


@pytest.fixture
def counted_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files actually read and hashed (the real sha256 still runs)."""
    hashed: list[str] = []
    real = manifest_module.file_digest

    def counting(path: Path) -> str:
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(manifest_module, "file_digest", counting)
    return hashed


@pytest.fixture
def collection_path(tmp_path: Path) -> Path:
    corpus = tmp_path / "texts.txt"
    corpus.write_text("rain falls on perth\nstorm hits the coast\nmarkets rise\n")
    path = tmp_path / "news.semsearch"
    Collection.build(corpus, path, encoder=FakeEncoder()).close()
    return path


def test_a_built_collection_opens_without_hashing_again(collection_path: Path, counted_hashes: list[str]) -> None:
    Collection.open(collection_path, encoder=FakeEncoder()).close()
    Collection.open(collection_path, encoder=FakeEncoder()).close()
    assert counted_hashes == []


def test_a_copy_is_hashed_once(tmp_path: Path, collection_path: Path, counted_hashes: list[str]) -> None:
    import shutil

    copy = tmp_path / "copy.semsearch"
    shutil.copytree(collection_path, copy)
    Collection.open(copy, encoder=FakeEncoder()).close()
    assert sorted(counted_hashes) == ["documents.sqlite", "index.usearch"]
    Collection.open(copy, encoder=FakeEncoder()).close()
    assert len(counted_hashes) == 2


def test_a_file_rewritten_with_its_old_size_and_mtime_is_caught(collection_path: Path) -> None:
    index = collection_path / "index.usearch"
    Collection.open(collection_path, encoder=FakeEncoder()).close()
    status = index.stat()
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 0x01
    index.write_bytes(bytes(data))
    os.utime(index, ns=(status.st_atime_ns, status.st_mtime_ns))
    with pytest.raises(CollectionError, match="index.usearch: checksum does not match"):
        Collection.open(collection_path, encoder=FakeEncoder())


def test_an_unreadable_record_only_costs_a_hash(collection_path: Path, verified_files_cache: Path, counted_hashes: list[str]) -> None:
    (verified_files_cache / "verified-files.json").write_text("{ not json")
    Collection.open(collection_path, encoder=FakeEncoder()).close()
    assert sorted(counted_hashes) == ["documents.sqlite", "index.usearch"]
    assert VerifiedFiles(verified_files_cache).known_digest(collection_path / "index.usearch") is not None
