"""The encoder registry: names through the real entry-point machinery, NAME:ARGUMENT specs kept in the manifest,
and a collection that refuses any query encoder but its own."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch import Collection
from semsearch.cli import cli
from semsearch.encoders import RecordedEncoder, get_encoder, list_encoders, parse_spec
from semsearch.errors import CollectionError, SemsearchError

PLUGIN_MODULE = "semsearch_test_plugin"

PLUGIN_SOURCE = '''
"""A third-party encoder package, as another project would ship one."""
import hashlib
import re

import numpy as np

from semsearch.encoders import Encoder, normalise

MODEL_VERSION = "1"


class WordHashEncoder(Encoder):
    """Hashed words in DIM dimensions, a plugin made by the test."""

    name = "word-hash"
    argument_help = "DIM"

    def __init__(self, argument=None):
        self.argument = argument
        self.dim = int(argument or 32)

    @property
    def version(self):
        return MODEL_VERSION

    def encode(self, texts):
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\\w+", text.lower()):
                vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return normalise(vectors)


class NeedsAnExtra(WordHashEncoder):
    """An encoder whose library is not installed."""

    name = "needs-extra"
    requires = ("semsearch_no_such_dependency",)
    extra = "imaginary"
'''


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """An installed distribution with entry points `word-hash` and a broken `missing-module`, found on sys.path."""
    root = tmp_path_factory.mktemp("site")
    (root / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    info = root / "semsearch_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: semsearch-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
            [semsearch.encoders]
            word-hash = {PLUGIN_MODULE}:WordHashEncoder
            missing-module = semsearch_no_such_module:Encoder
            needs-extra = {PLUGIN_MODULE}:NeedsAnExtra
            """)
    )
    sys.path.insert(0, str(root))
    try:
        import semsearch_test_plugin

        yield semsearch_test_plugin
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(PLUGIN_MODULE, None)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("use-multilingual", ("use-multilingual", None)),
        ("tfhub:/models/nnlm-en-dim128", ("tfhub", "/models/nnlm-en-dim128")),
        ("sentence-transformers:sentence-transformers/all-MiniLM-L6-v2", ("sentence-transformers", "sentence-transformers/all-MiniLM-L6-v2")),
        ("tfhub:C:/models/x", ("tfhub", "C:/models/x")),
    ],
)
def test_parse_spec_splits_at_the_first_colon(spec: str, expected: tuple[str, str | None]) -> None:
    assert parse_spec(spec) == expected


def test_an_unknown_name_lists_the_installed_ones() -> None:
    with pytest.raises(SemsearchError, match=r"no encoder named 'nope'; installed: .*use-multilingual"):
        get_encoder("nope")


def test_arguments_are_checked_against_what_the_encoder_takes() -> None:
    with pytest.raises(SemsearchError, match="takes no argument"):
        get_encoder("use-multilingual:large")
    with pytest.raises(SemsearchError, match="needs an argument: --encoder sentence-transformers:NAME_OR_PATH"):
        get_encoder("sentence-transformers")


def test_a_plugin_package_adds_an_encoder_by_entry_point(plugin: object) -> None:
    encoder = get_encoder("word-hash:48")
    assert type(encoder).__module__ == PLUGIN_MODULE
    assert encoder.spec() == {"name": "word-hash", "argument": "48", "version": "1", "dim": 48}
    assert encoder.encode(["a b", "c"]).shape == (2, 48)


def test_list_encoders_shows_dimension_install_state_and_broken_plugins(plugin: object) -> None:
    rows = {row.name: row for row in list_encoders()}
    assert rows["use-multilingual"].dim == 512 and rows["use-multilingual"].installed
    assert rows["sentence-transformers"].dim is None and rows["sentence-transformers"].usage == "sentence-transformers:NAME_OR_PATH"
    assert rows["tfhub"].extra == "tfhub" and rows["tfhub"].usage == "tfhub:PATH"
    assert rows["word-hash"].installed and rows["word-hash"].summary.startswith("Hashed words")
    assert not rows["missing-module"].installed and "cannot load" in (rows["missing-module"].problem or "")
    assert not rows["needs-extra"].installed
    assert rows["needs-extra"].problem == "needs semsearch_no_such_dependency: pip install 'semsearch[imaginary]'"


def test_encoders_command_lists_every_encoder(plugin: object) -> None:
    result = CliRunner().invoke(cli, ["encoders"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ENCODER", "DIM", "INSTALLED"]
    use_line = next(line for line in lines if line.startswith("use-multilingual "))
    assert use_line.split()[1:3] == ["512", "yes"] and "(default)" in use_line
    assert any(line.startswith("sentence-transformers:NAME_OR_PATH ") and "per model" in line for line in lines)
    assert any(line.startswith("word-hash:DIM ") for line in lines)
    needs_extra = lines.index(next(line for line in lines if line.startswith("needs-extra:DIM ")))
    assert lines[needs_extra].split()[1:4] == ["per", "model", "no"]
    assert "pip install 'semsearch[imaginary]'" in lines[needs_extra + 1]

    as_json = [json.loads(line) for line in CliRunner().invoke(cli, ["encoders", "--json"]).output.splitlines()]
    assert {row["name"]: row["installed"] for row in as_json}["missing-module"] is False


def test_the_manifest_keeps_the_argument_and_reopening_uses_it(plugin, tmp_path: Path, sample_csv: Path) -> None:
    path = tmp_path / "plugin.semsearch"
    result = CliRunner().invoke(cli, ["build", str(sample_csv), "-o", str(path), "--encoder", "word-hash:24", "--limit", "500", "-q"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["encoder"] == {"name": "word-hash", "argument": "24", "version": "1", "dim": 24}

    with Collection.open(path, trust_encoder=True) as collection:  # our own model: trusted
        assert isinstance(collection.encoder, RecordedEncoder)
        first = collection.store.get([1])[1].text
        hits = collection.search(first, k=3)
        assert hits[0].text == first
        assert collection.encoder.inner.dim == 24  # the argument came back from the manifest

    searched = CliRunner().invoke(cli, ["search", str(path), first, "-k", "1", "--json", "--trust-encoder"])
    assert json.loads(searched.stdout)["hits"][0]["text"] == first
    described = CliRunner().invoke(cli, ["info", str(path)])
    assert "encoder:    word-hash:24 1, 24 dimensions" in described.stdout


def test_a_python_caller_with_another_encoder_gets_a_clear_error(plugin, tmp_path: Path, sample_csv: Path) -> None:
    path = tmp_path / "plugin.semsearch"
    Collection.build(sample_csv, path, encoder="word-hash:24", limit=200).close()
    with pytest.raises(CollectionError, match=r"built with encoder word-hash:24 1 \(24 dimensions\); the query encoder is word-hash:32 1 \(32 dimensions\)"):
        Collection.open(path, encoder="word-hash:32")
    with pytest.raises(CollectionError, match="the query encoder is use-multilingual"):
        Collection.open(path, encoder=get_encoder("use-multilingual"))
    Collection.open(path, encoder=get_encoder("word-hash:24")).close()  # the same one is welcome


def test_a_changed_model_is_caught_when_the_first_query_is_encoded(plugin, tmp_path: Path, sample_csv: Path) -> None:
    path = tmp_path / "plugin.semsearch"
    Collection.build(sample_csv, path, encoder="word-hash:24", limit=200).close()
    plugin.MODEL_VERSION = "2"  # the installed model changed after the build
    try:
        with Collection.open(path, trust_encoder=True) as collection:  # opening for info loads no model, so it cannot tell yet
            assert collection.info()["encoder"]["version"] == "1"
            with pytest.raises(CollectionError, match=r"built with encoder word-hash:24 1 .* query encoder is word-hash:24 2"):
                collection.search("anything")
    finally:
        plugin.MODEL_VERSION = "1"
