"""read_corpus on the real sample files and on hand-made broken ones."""

from __future__ import annotations

import datetime
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as parquet
import pytest

from semsearch.sources.corpus import parse_date, read_corpus
from semsearch.errors import CorpusError


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_bundled_sample_reads_every_headline_with_its_date(sample_csv: Path) -> None:
    corpus = read_corpus(sample_csv)
    documents = list(corpus)
    assert len(documents) == 21_293
    assert documents[0].text == "aba decides against community broadcasting licence"
    assert documents[0].date == datetime.date(2003, 2, 19)
    assert documents[-1].date == datetime.date(2003, 6, 2)
    assert [d.id for d in documents[:3]] == [0, 1, 2]
    assert corpus.stats.skipped_empty == 0 and corpus.stats.skipped_bad == 0


def test_dataverse_raw_tsv_unquotes_headlines(raw_tsv: Path, sample_csv: Path) -> None:
    from_tsv = list(read_corpus(raw_tsv))
    from_csv = list(read_corpus(sample_csv, limit=2000))
    assert len(from_tsv) == 2000
    assert [d.text for d in from_tsv] == [d.text for d in from_csv]
    assert not any(d.text.startswith('"') for d in from_tsv)
    assert from_tsv[5].date == datetime.date(2003, 2, 19)


def test_txt_one_text_per_line_skips_and_counts_empty_lines(tmp_path: Path) -> None:
    corpus = read_corpus(write(tmp_path / "texts.txt", "first headline\n\n   \nsecond headline\n"))
    assert [(d.id, d.text) for d in corpus] == [(0, "first headline"), (1, "second headline")]
    assert corpus.stats.skipped_empty == 2


def test_csv_columns_by_name_and_extra_columns_as_metadata(tmp_path: Path) -> None:
    path = write(tmp_path / "news.csv", "id,title,when,section\n7,rain in perth,2024-03-01,weather\n9,\"a, quoted title\",,sport\n")
    documents = list(read_corpus(path, text_field="title", date_field="when"))
    assert documents[0].id == 7 and documents[0].date == datetime.date(2024, 3, 1)
    assert documents[0].meta == {"section": "weather"}
    assert documents[1].text == "a, quoted title" and documents[1].date is None


def test_jsonl_and_gzip(tmp_path: Path) -> None:
    lines = [json.dumps({"text": "one", "date": "20030219", "source": "abc"}), "", json.dumps({"text": "two"})]
    path = write(tmp_path / "texts.jsonl.gz", gzip.compress("\n".join(lines).encode()))
    corpus = read_corpus(path)
    documents = list(corpus)
    assert [d.text for d in documents] == ["one", "two"]
    assert documents[0].date == datetime.date(2003, 2, 19) and documents[0].meta == {"source": "abc"}
    assert corpus.stats.skipped_empty == 1


def test_parquet(tmp_path: Path) -> None:
    table = pa.table({"headline_text": ["alpha", None, "gamma"], "publish_date": [datetime.date(2020, 1, 2), None, None]})
    parquet.write_table(table, tmp_path / "texts.parquet")
    corpus = read_corpus(tmp_path / "texts.parquet")
    documents = list(corpus)
    assert [d.text for d in documents] == ["alpha", "gamma"]
    assert documents[0].date == datetime.date(2020, 1, 2)
    assert corpus.stats.skipped_empty == 1
    assert corpus.count_rows() == 3


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "publish_date,headline_text\n20030219,fine\n20030219,too,many\n", "line 3: expected 2 fields"),
        ("bad.csv", b"publish_date,headline_text\n20030219,fine\n20030219,caf\xe9\n", "line 3: byte 0xe9 at column 13 is not UTF-8"),
        ("bad.csv", "publish_date,headline_text\n2003-02-30,bad date\n", "line 2: field 'publish_date'"),
        ("bad.csv", "publish_date,headline_text\n20030219,\"unterminated\n", "malformed CSV row"),
        ("bad.jsonl", '{"text": "fine"}\n{"text": broken}\n', "line 2: invalid JSON"),
        ("bad.jsonl", '{"text": "fine"}\n["a list"]\n', "line 2: expected a JSON object"),
        ("bad.csv", "id,text\n7,a headline\nseven,a headline\n", "line 3: field 'id': 'seven' is not an integer id; the first id was"),
        ("bad.csv", "a,b\n1,2\n", "no text column among a, b"),
    ],
)
def test_broken_files_name_file_line_and_problem(tmp_path: Path, name: str, content: str | bytes, message: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(CorpusError, match="^" + str(path).replace("\\", "\\\\") + ", .*") as caught:
        list(read_corpus(path))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_skip_bad_rows_skips_and_counts(tmp_path: Path) -> None:
    content = b"publish_date,headline_text\n20030219,good one\n20030219,too,many\n2003xx19,bad date\n20030219,caf\xe9\n20030220,good two\n"
    corpus = read_corpus(write(tmp_path / "mixed.csv", content), skip_bad_rows=True)
    assert [d.text for d in corpus] == ["good one", "good two"]
    assert corpus.stats.skipped_bad == 3


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="cannot tell the format"):
        read_corpus(write(tmp_path / "texts.doc", "x"))
    with pytest.raises(CorpusError, match="no such file"):
        read_corpus(tmp_path / "absent.csv")


def test_limit_stops_early(sample_csv: Path) -> None:
    assert len(list(read_corpus(sample_csv, limit=10))) == 10


def test_parse_date_forms() -> None:
    assert parse_date("20030219") == datetime.date(2003, 2, 19)
    assert parse_date("2003-02-19T10:30:00") == datetime.date(2003, 2, 19)
    assert parse_date("") is None
    with pytest.raises(ValueError):
        parse_date("19/02/2003")
