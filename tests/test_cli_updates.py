"""semsearch add and semsearch remove, through click's runner, on a collection built with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import semsearch.encoders
from semsearch import Collection
from semsearch.cli import cli

HEADLINES = "publish_date,headline_text\n20200101,police find body in river\n20200102,council approves new budget\n20200103,drought hits farmers\n"


@pytest.fixture
def collection_path(tmp_path: Path, fake_encoder, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A collection the CLI can open: its encoder name resolves to the fake encoder."""
    real_get_encoder = semsearch.encoders.get_encoder

    def get_encoder(spec: str, argument: str | None = None):
        return fake_encoder if spec == fake_encoder.name else real_get_encoder(spec, argument)

    monkeypatch.setattr(semsearch.encoders, "get_encoder", get_encoder)
    source = tmp_path / "headlines.csv"
    source.write_text(HEADLINES)
    path = tmp_path / "news.semsearch"
    Collection.build(source, path, encoder=fake_encoder).close()
    return path


def test_add_then_remove(tmp_path: Path, collection_path: Path, fake_encoder) -> None:
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": 1, "text": "council rejects budget"}\n{"id": 7, "text": "kangaroo escapes from zoo", "date": "2021-03-04"}\n')
    result = CliRunner().invoke(cli, ["add", str(collection_path), str(more), "-q"])
    assert result.exit_code == 0, result.output
    assert "1 added, 1 replaced, 0 removed; 4 documents" in result.output
    result = CliRunner().invoke(cli, ["remove", str(collection_path), "--id", "0", "--id", "99"])
    assert result.exit_code == 0, result.output
    assert "1 removed; 3 documents in 2 segments; not in the collection: 99" in result.output
    with Collection.open(collection_path, encoder=fake_encoder) as collection:
        texts = {d.id: d.text for d in collection.store.get(range(10)).values()}
    assert texts == {1: "council rejects budget", 2: "drought hits farmers", 7: "kangaroo escapes from zoo"}


def test_add_without_ids_numbers_after_the_largest(tmp_path: Path, collection_path: Path, fake_encoder) -> None:
    more = tmp_path / "more.txt"
    more.write_text("kangaroo escapes from zoo\n\nparliament debates climate\n")
    result = CliRunner().invoke(cli, ["add", str(collection_path), str(more), "-q"])
    assert result.exit_code == 0, result.output
    with Collection.open(collection_path, encoder=fake_encoder) as collection:
        assert [hit.id for hit in collection.search("parliament debates climate", k=1)] == [4]
        assert len(collection) == 5


def test_no_replace_refuses_an_existing_id_and_changes_nothing(tmp_path: Path, collection_path: Path) -> None:
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": 9, "text": "new"}\n{"id": 2, "text": "clash"}\n')
    before = (collection_path / "manifest.json").read_bytes()
    result = CliRunner().invoke(cli, ["add", str(collection_path), str(more), "--no-replace", "-q"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: document id 2 is in the collection already; upsert (semsearch add) replaces documents"
    assert (collection_path / "manifest.json").read_bytes() == before


def test_bad_source_is_one_line_and_changes_nothing(tmp_path: Path, collection_path: Path) -> None:
    more = tmp_path / "more.csv"
    more.write_text("publish_date,headline_text\n2020-13-45,bad date\n")
    before = (collection_path / "manifest.json").read_bytes()
    result = CliRunner().invoke(cli, ["add", str(collection_path), str(more), "-q"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {more}, line 2: field 'publish_date'")
    assert (collection_path / "manifest.json").read_bytes() == before
    assert not any(p.name.startswith("generation-") for p in collection_path.iterdir())


def test_search_with_filters_and_modes(collection_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["search", str(collection_path), "budget", "--mode", "keyword", "--json"])
    assert result.exit_code == 0, result.output
    assert [hit["id"] for hit in json.loads(result.output)["hits"]] == [1]
    result = runner.invoke(cli, ["search", str(collection_path), "police budget drought", "--date-from", "2020-01-02", "--json", "--mode", "hybrid"])
    assert {hit["id"] for hit in json.loads(result.output)["hits"]} == {1, 2}
    result = runner.invoke(cli, ["search", str(collection_path), "farmers", "--date-to", "2020-01-01", "--json"])
    assert [hit["id"] for hit in json.loads(result.output)["hits"]] == [0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--date-from", "2020-02-30"], "Error: date_from: '2020-02-30' is not a date; expected YYYY-MM-DD, e.g. 2003-04-01"),
        (["--where", "desk"], "Error: --where 'desk': expected FIELD=VALUE, FIELD>=VALUE, FIELD!=VALUE or 'FIELD in (A,B)', e.g. --where desk=sport"),
        (["--date-from", "2020-03-01", "--date-to", "2020-01-01"], "Error: date_from 2020-03-01 is after date_to 2020-01-01: no document can match"),
    ],
)
def test_bad_filter_options_are_one_line(collection_path: Path, options: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["search", str(collection_path), "police", *options])
    assert result.exit_code == 1
    assert result.output.strip() == message
