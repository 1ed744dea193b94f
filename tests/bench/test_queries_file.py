"""tests/data/queries.jsonl: hand-made queries on the bundled sample, each with the headline(s) it should find."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

QUERIES = Path(__file__).parents[1] / "data" / "queries.jsonl"


def test_queries_name_real_headlines(sample_csv: Path) -> None:
    with gzip.open(sample_csv, "rt", encoding="utf-8") as stream:
        headlines = [row[1] for row in list(csv.reader(stream))[1:]]
    records = [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 30
    assert len({record["query"] for record in records}) == len(records)
    for record in records:
        assert set(record) == {"query", "ids", "kind"}
        assert record["ids"] and all(0 <= i < len(headlines) for i in record["ids"])
        assert record["kind"] in {"paraphrase", "names", "spanish"}
        assert record["query"] not in {headlines[i] for i in record["ids"]}, "a query is not its headline verbatim"
