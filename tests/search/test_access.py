"""Getting at the documents: get, count, iter_documents, export, similar; and search pages and score floors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from semsearch import Collection
from semsearch.errors import SemsearchError


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory, sample_csv: Path) -> Collection:
    from tests.conftest import FakeEncoder

    built = Collection.build(sample_csv, tmp_path_factory.mktemp("access") / "c.semsearch", encoder=FakeEncoder(), backend="usearch",
                             limit=3_000)
    yield built
    built.close()


def test_get_keeps_the_order_asked_and_leaves_out_what_is_not_there(collection: Collection) -> None:
    documents = collection.get([7, 2, 10**9, 5])
    assert [document.id for document in documents] == [7, 2, 5]
    assert documents[1] == collection.store.get([2])[2]


def test_count_and_pages_of_documents(collection: Collection) -> None:
    assert collection.count() == 3_000 == len(list(collection.iter_documents()))
    march = {"date_from": "2003-03-01", "date_to": "2003-03-31"}
    in_march = [document.id for document in collection.iter_documents(**march)]
    assert collection.count(**march) == len(in_march) > 0
    assert in_march == sorted(in_march)
    pages = [[d.id for d in collection.iter_documents(**march, limit=100, offset=offset)] for offset in range(0, len(in_march), 100)]
    assert [i for page in pages for i in page] == in_march  # pages meet without gap or overlap
    assert list(collection.iter_documents(offset=5_000)) == []
    with pytest.raises(SemsearchError, match="cannot be negative"):
        collection.iter_documents(offset=-1)


def test_search_pages_follow_each_other_and_min_score_cuts(collection: Collection) -> None:
    first, second = collection.search("flood warning", k=10), collection.search("flood warning", k=10, offset=10)
    both = collection.search("flood warning", k=20)
    assert [hit.id for hit in first + second] == [hit.id for hit in both]
    floor = both[5].score
    assert all(hit.score >= floor for hit in collection.search("flood warning", k=20, min_score=floor))
    assert len(collection.search("flood warning", k=20, min_score=floor)) < 20
    with pytest.raises(SemsearchError, match="blank"):
        collection.search("   ")
    with pytest.raises(SemsearchError, match="offset"):
        collection.search("flood", offset=-2)


def test_similar_leaves_the_document_itself_out(collection: Collection) -> None:
    hits = collection.similar(42, k=5)
    assert len(hits) == 5 and 42 not in {hit.id for hit in hits}
    text = collection.get([42])[0].text
    assert [hit.id for hit in hits] == [hit.id for hit in collection.search(text, k=6) if hit.id != 42][:5]
    with pytest.raises(SemsearchError, match="no document with id 99999"):
        collection.similar(99_999)


def test_export_round_trips_through_every_format(collection: Collection, tmp_path: Path) -> None:
    stream = io.StringIO()
    assert collection.export(stream, "jsonl", limit=50) == 50
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [record["id"] for record in records] == list(range(50))
    assert records[3]["text"] == collection.get([3])[0].text
    assert collection.export(tmp_path / "out.csv", "csv", date_from="2003-03-01", date_to="2003-03-31") == collection.count(
        date_from="2003-03-01", date_to="2003-03-31")
    with (tmp_path / "out.csv").open(newline="") as opened:
        rows = list(csv.DictReader(opened))
    assert rows and all("2003-03-01" <= row["date"] <= "2003-03-31" for row in rows)
    assert collection.export(tmp_path / "out.parquet", "parquet", vectors=True, limit=20) == 20
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["id", "text", "date", "vector"]
    np.testing.assert_allclose(np.array(table.column("vector")[0].as_py()), collection.vectors(np.array([0]))[0], atol=1e-3)
    rebuilt = Collection.build(tmp_path / "out.csv", tmp_path / "again.semsearch", encoder=collection.encoder, backend="exact")
    assert len(rebuilt) == len(rows)
    rebuilt.close()
    assert not list(tmp_path.glob(".out*"))  # no temporary file left behind
    with pytest.raises(SemsearchError, match="Parquet is written to a file"):
        collection.export(io.StringIO(), "parquet")
