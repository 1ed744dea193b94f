"""A semicolon CSV is read as one, not as one text per line; a file that reads as one column says so."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from semsearch.cli import cli
from semsearch.errors import CorpusError
from semsearch.sources.corpus import read_corpus


def test_a_semicolon_csv_is_sniffed_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "euro.csv"
    path.write_text("text;date;desk\nhello world;2020-01-01;news\nsecond line;2020-01-02;sport\n")
    documents = list(read_corpus(path))
    assert [(d.text, d.date.isoformat(), d.meta) for d in documents] == [
        ("hello world", "2020-01-01", {"desk": "news"}), ("second line", "2020-01-02", {"desk": "sport"})]


def test_a_header_with_commas_keeps_the_comma(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("text,note\nprices; rising,a;b\n")
    assert [(d.text, d.meta) for d in read_corpus(path)] == [("prices; rising", {"note": "a;b"})]


def test_a_delimiter_can_be_given_and_must_be_one_character(tmp_path: Path) -> None:
    path = tmp_path / "pipes.csv"
    path.write_text("text|year\nfirst|2001\n")
    assert [d.meta for d in read_corpus(path, delimiter="|")] == [{"year": "2001"}]
    with pytest.raises(CorpusError, match="a delimiter is one character"):
        read_corpus(path, delimiter="||")


def test_one_column_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("headline_text:date\nhello:2020\n")
    with caplog.at_level(logging.WARNING):
        assert [d.text for d in read_corpus(path)] == ["hello:2020"]
    assert "reads as one column" in caplog.text and "--delimiter" in caplog.text


def test_the_command_line_takes_a_delimiter(tmp_path: Path, fake_encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    import semsearch.encoders

    real = semsearch.encoders.get_encoder
    monkeypatch.setattr(semsearch.encoders, "get_encoder", lambda spec, argument=None: fake_encoder if spec == fake_encoder.name else real(spec, argument))
    path = tmp_path / "colon.csv"
    path.write_text("text:year\nfirst:2001\nsecond:2002\n")
    result = CliRunner().invoke(cli, ["build", str(path), "-o", str(tmp_path / "c.semsearch"), "--encoder", fake_encoder.name,
                                      "--delimiter", ":", "--backend", "exact", "-q"])
    assert result.exit_code == 0, result.output
    counted = CliRunner().invoke(cli, ["count", str(tmp_path / "c.semsearch"), "--where", "year>=2002"])
    assert counted.output.strip() == "1", counted.output
