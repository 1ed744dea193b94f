"""SQLite's quick_check on a collection's first open: a store damaged inside its pages is one line, found at once."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from semsearch import Collection
from semsearch.errors import CollectionError


def test_a_store_damaged_inside_is_refused_on_open(tmp_path: Path, sample_csv: Path, fake_encoder) -> None:
    path = tmp_path / "c.semsearch"
    Collection.build(sample_csv, path, encoder=fake_encoder, backend="exact", limit=2_000).close()
    store = path / "documents.sqlite"
    data = bytearray(store.read_bytes())
    data[2 * 4096 + 5] ^= 0xFF  # where a b-tree page's cells start: its free space no longer adds up
    store.write_bytes(bytes(data))
    manifest = json.loads((path / "manifest.json").read_text())  # as a stranger would: checksums that match
    manifest["files"]["documents.sqlite"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CollectionError, match="documents.sqlite: the document store is damaged: .*Page 3") as raised:
        with Collection.open(path, encoder=fake_encoder) as collection:
            collection.search("flood warning", k=10, mode="keyword")
            list(collection.iter_documents())
    assert "\n" not in str(raised.value)
