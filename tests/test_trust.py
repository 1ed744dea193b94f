"""A collection names its encoder; a model it chose (a path, a hub name) is loaded only when the user says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch import Collection
from semsearch.cli import cli
from semsearch.encoders import check_trusted
from semsearch.errors import CollectionError


@pytest.fixture
def stranger(tmp_path: Path, sample_csv: Path, fake_encoder) -> Path:
    """A collection whose manifest names a TF-Hub model shipped inside it, as an attacker would write it."""
    path = tmp_path / "stranger.semsearch"
    Collection.build(sample_csv, path, encoder=fake_encoder, backend="exact", limit=200).close()
    model = path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"\x00")  # never read: refused before any load
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["encoder"] = {"name": "tfhub", "argument": str(model), "version": "x", "dim": fake_encoder.dim}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_a_search_refuses_to_run_the_collections_model(stranger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    monkeypatch.setattr("semsearch.encoders.get_encoder", lambda *arguments: loaded.append(str(arguments)))
    with Collection.open(stranger) as collection:  # opening is fine: nothing is loaded yet
        with pytest.raises(CollectionError, match="--trust-encoder"):
            collection.search("flood warning")
    assert loaded == []
    result = CliRunner().invoke(cli, ["search", str(stranger), "flood warning"])
    assert result.exit_code == 1 and "would load and run a model the collection chose" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert loaded == []


def test_trusting_it_loads_it(stranger: Path) -> None:
    result = CliRunner().invoke(cli, ["search", str(stranger), "flood warning", "--trust-encoder"])
    assert result.exit_code == 1
    assert "--trust-encoder" not in result.output and "cannot load the model" in result.output  # tried: it is no model


def test_an_installed_encoder_by_its_plain_name_needs_no_trust() -> None:
    check_trusted({"name": "use-multilingual", "argument": None}, "news.semsearch", trusted=False)
    with pytest.raises(CollectionError, match="sentence-transformers:all-MiniLM"):
        check_trusted({"name": "sentence-transformers", "argument": "all-MiniLM-L6-v2"}, "news.semsearch", trusted=False)
    check_trusted({"name": "sentence-transformers", "argument": "all-MiniLM-L6-v2"}, "news.semsearch", trusted=True)
