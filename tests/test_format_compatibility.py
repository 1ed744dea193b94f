"""Collections written by an earlier semsearch, committed under tests/data/format-v1, must keep opening.

As spotify/annoy does with its old index files: a change that breaks the on-disk format fails
here, instead of silently stranding users' collections. Made with the FakeEncoder from the
first 220 rows of tests/data/abcnews-raw.sample.tsv; the updated one had rows 200-219 added and
ids 0-4 removed afterwards.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from semsearch import Collection
from semsearch.sources.corpus import read_corpus
from tests.conftest import RAW_TSV, FakeEncoder

COMMITTED = Path(__file__).parent / "data" / "format-v1"


@pytest.fixture(scope="module")
def headlines() -> list[str]:
    return [document.text for document in read_corpus(RAW_TSV, limit=220)]


@pytest.mark.parametrize(("name", "ids"), [("usearch", range(200)), ("exact", range(200)), ("usearch-updated", range(5, 220))])
def test_committed_collection_opens_and_answers(tmp_path: Path, headlines: list[str], name: str, ids: range) -> None:
    path = tmp_path / name
    shutil.copytree(COMMITTED / name, path)
    with Collection.open(path, encoder=FakeEncoder()) as collection:
        assert len(collection) == len(ids)
        assert collection.info()["format_version"] == 1
        stored = collection.store.get(range(230))
        assert sorted(stored) == list(ids)
        assert all(stored[i].text == headlines[i] for i in ids)
        for document_id in (ids[0], ids[len(ids) // 2], ids[-1]):
            best = collection.search(headlines[document_id], k=1)[0]
            assert best.text == headlines[document_id] and best.score > 0.99
