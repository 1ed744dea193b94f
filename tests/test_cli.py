"""The command line through click's CliRunner, with the real encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch.cli import cli


@pytest.fixture(scope="module")
def collection_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "news.semsearch"
    result = CliRunner().invoke(cli, ["build", "abcnews-sample", "-o", str(path), "--limit", "1500", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "built" in result.output and "1,500 documents, usearch index" in result.output
    return path


def test_search_prints_ranked_hits_with_scores_and_dates(collection_path: Path) -> None:
    result = CliRunner().invoke(cli, ["search", str(collection_path), "war in iraq", "-k", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "war in iraq"
    assert [line.split(".")[0].strip() for line in lines[1:]] == ["1", "2", "3"]
    assert all(" 2003-0" in line for line in lines[1:])
    assert any("iraq" in line for line in lines[1:])


def test_search_json(collection_path: Path) -> None:
    result = CliRunner().invoke(cli, ["search", str(collection_path), "rugby", "-k", "4", "--json"])
    record = json.loads(result.output)
    assert record["query"] == "rugby"
    assert len(record["hits"]) == 4
    assert set(record["hits"][0]) == {"id", "text", "date", "score"}
    scores = [hit["score"] for hit in record["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_search_reads_one_query_per_line_from_stdin(collection_path: Path) -> None:
    result = CliRunner().invoke(cli, ["search", str(collection_path), "--json", "-k", "2"], input="rain\n\ncricket\n")
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [record["query"] for record in records] == ["rain", "cricket"]


def test_info(collection_path: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(collection_path)])
    assert result.exit_code == 0
    assert "documents:  1,500" in result.output
    assert "use-multilingual" in result.output and "512 dimensions" in result.output
    facts = json.loads(CliRunner().invoke(cli, ["info", str(collection_path), "--json"]).output)
    assert facts["count"] == 1500 and facts["format_version"] == 2


def test_user_error_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["search", str(tmp_path / "absent.semsearch"), "x"])
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'absent.semsearch'}: no such collection\n"


def test_bad_corpus_row_is_one_line(tmp_path: Path) -> None:
    corpus = tmp_path / "bad.csv"
    corpus.write_bytes(b"publish_date,headline_text\n20030219,ok\n20030219,caf\xe9\n")
    result = CliRunner().invoke(cli, ["build", str(corpus), "-o", str(tmp_path / "x.semsearch"), "--quiet"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {corpus}, line 3: byte 0xe9 at column 13 is not UTF-8"]


def test_skip_bad_rows_reports_counts(tmp_path: Path) -> None:
    corpus = tmp_path / "mixed.csv"
    corpus.write_bytes(b"publish_date,headline_text\n20030219,rain falls\n20030219,a,b\n\n20030220,sun shines\n")
    result = CliRunner().invoke(cli, ["build", str(corpus), "-o", str(tmp_path / "x.semsearch"), "--quiet", "--skip-bad-rows"])
    assert result.exit_code == 0, result.output
    assert "2 documents" in result.output and "skipped 1 empty, 1 bad" in result.output


@pytest.mark.parametrize(
    "arguments",
    [["search"], ["build", "x.csv"], ["search", "p", "q", "-k", "0"], ["build", "x.csv", "-o", "y", "--backend", "nope"], ["frobnicate"]],
)
def test_usage_errors_exit_2(arguments: list[str]) -> None:
    assert CliRunner().invoke(cli, arguments).exit_code == 2
