"""semsearch get, list, count, export and similar, and search --offset/--min-score, through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import semsearch.encoders
from semsearch import Collection
from semsearch.cli import cli

ROWS = [
    {"text": "police find body in river", "date": "2020-01-01", "desk": "news", "year": 2020},
    {"text": "council approves new budget", "date": "2020-01-02", "desk": "business", "year": 2020},
    {"text": "drought hits farmers", "date": "2021-01-03", "desk": "rural", "year": 2021},
    {"text": "river flood warning issued", "date": "2021-02-04", "desk": "news", "year": 2021},
    {"text": "farmers welcome rain", "date": "2022-03-05", "desk": "rural", "year": 2022},
]


@pytest.fixture
def path(tmp_path: Path, fake_encoder, monkeypatch: pytest.MonkeyPatch) -> Path:
    real_get_encoder = semsearch.encoders.get_encoder
    monkeypatch.setattr(semsearch.encoders, "get_encoder",
                        lambda spec, argument=None: fake_encoder if spec == fake_encoder.name else real_get_encoder(spec, argument))
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    target = tmp_path / "news.semsearch"
    Collection.build(source, target, encoder=fake_encoder, backend="exact").close()
    return target


def run(*arguments: str):  # noqa: ANN201
    return CliRunner().invoke(cli, [str(argument) for argument in arguments])


def test_get_prints_documents_and_names_the_missing(path: Path) -> None:
    result = run("get", path, 3, 0)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.output.splitlines()] == [3, 0]
    assert json.loads(result.output.splitlines()[0])["meta"] == {"desk": "news", "year": 2021}
    missing = run("get", path, 1, 42)
    assert missing.exit_code == 1 and missing.output.splitlines()[-1] == f"Error: not in {path}: 42"


def test_list_and_count_with_filters(path: Path) -> None:
    assert run("count", path).output.strip() == "5"
    assert run("count", path, "--where", "year>=2021").output.strip() == "3"
    assert run("count", path, "--where", "desk in (news,rural)", "--where", "year<2022").output.strip() == "3"
    assert run("count", path, "--where", "desk!=news", "--date-to", "2021-12-31").output.strip() == "2"
    listed = run("list", path, "--where", "desk=rural", "--limit", "1", "--offset", "1")
    assert [json.loads(line)["id"] for line in listed.output.splitlines()] == [4]
    typo = run("count", path, "--where", "dsk=news")
    assert typo.exit_code == 1 and "no document has a metadata field 'dsk'; the fields are desk, year" in typo.output


def test_export_writes_every_format(path: Path, tmp_path: Path) -> None:
    jsonl = run("export", path, "--where", "desk=news")
    assert jsonl.exit_code == 0, jsonl.output
    records = [json.loads(line) for line in jsonl.output.splitlines() if line.startswith("{")]
    assert [(record["id"], record["desk"]) for record in records] == [(0, "news"), (3, "news")]
    result = run("export", path, "-o", tmp_path / "all.parquet", "--format", "parquet", "--vectors")
    assert result.exit_code == 0 and "exported 5 documents" in result.output
    table = pq.read_table(tmp_path / "all.parquet")
    assert table.column_names == ["id", "text", "date", "desk", "year", "vector"] and table.num_rows == 5
    assert run("export", path, "--format", "parquet").exit_code == 1


def test_similar_and_search_pages(path: Path) -> None:
    result = run("similar", path, 3, "-k", "2", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)["hits"]
    assert len(hits) == 2 and 3 not in {hit["id"] for hit in hits}
    everything = json.loads(run("search", path, "river", "-k", "4", "--json").output)["hits"]
    page = json.loads(run("search", path, "river", "-k", "2", "--offset", "2", "--json").output)["hits"]
    assert [hit["id"] for hit in page] == [hit["id"] for hit in everything[2:4]]
    floor = (everything[1]["score"] + everything[2]["score"]) / 2  # JSON scores are rounded: cut between two
    above = json.loads(run("search", path, "river", "-k", "4", "--min-score", str(floor), "--json").output)["hits"]
    assert [hit["id"] for hit in above] == [hit["id"] for hit in everything[:2]]
    text = run("search", path, "river", "-k", "1", "--offset", "2")
    assert "  3. " in text.output  # ranks count from the offset
    blank = run("search", path, "  ")
    assert blank.exit_code == 1 and "the query is blank" in blank.output
