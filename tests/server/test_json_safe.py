"""Every answer is JSON: a score or a metadata value that is NaN or infinite never reaches a response
(Python's json would write NaN, which JSON has not; Starlette refuses to, and the request was a 500)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from semsearch import Collection
from semsearch.server.app import create_app
from semsearch.server.launch import AppServer, serve_app
from tests.conftest import FakeEncoder

MAGIC = "xyzzy"


class NaNEncoder(FakeEncoder):
    """The fake encoder, but a text with the magic word becomes a vector of NaN (only queries have it: a collection
    holding a NaN vector is refused when opened)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = super().encode(texts)
        vectors[[MAGIC in text for text in texts]] = np.nan
        return vectors


class OldMetadata:
    """A collection as one built before metadata was checked could be: its first document's metadata holds NaN and
    an infinity (Python's json reads and writes both; JSON has neither)."""

    def __init__(self, collection: Collection) -> None:
        self._collection = collection

    def __getattr__(self, name: str):  # noqa: ANN204 - everything else is the real collection's
        return getattr(self._collection, name)

    def __len__(self) -> int:
        return len(self._collection)

    def search_request(self, queries: list[str], request):  # noqa: ANN001, ANN201
        return [[replace(hit, meta={"level": float("nan"), "nested": {"x": [1, float("inf")]}}) if hit.id == 0 else hit for hit in hits]
                for hits in self._collection.search_request(queries, request)]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[AppServer]:
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"text": "flood warning for the coast"}, {"text": "flood waters rise", "level": 2.5}, {"text": "fire danger in the hills"}]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    collection = Collection.build(corpus, tmp_path / "nan.semsearch", encoder=NaNEncoder(), backend="exact")
    try:
        with serve_app(create_app(OldMetadata(collection))) as server:  # type: ignore[arg-type]
            yield server
    finally:
        collection.close()


def test_non_finite_metadata_is_null(served: AppServer) -> None:
    answer = served.request("/search?q=flood&k=3")  # Client.request refuses NaN and Infinity in what it reads
    assert answer.status == 200
    by_text = {hit["text"]: hit for hit in answer.body["hits"]}
    assert by_text["flood warning for the coast"]["meta"] == {"level": None, "nested": {"x": [1, None]}}
    assert by_text["flood waters rise"]["meta"] == {"level": 2.5}


def test_a_hit_without_a_finite_score_is_left_out(served: AppServer) -> None:
    answer = served.request(f"/search?q={MAGIC}+flood&k=3")  # the query's vector is NaN: so is every cosine
    assert answer.status == 200 and answer.body["hits"] == []
    hybrid = served.request(f"/search?q={MAGIC}+flood&k=3&mode=hybrid")  # the keyword half still ranks
    assert hybrid.status == 200 and {hit["text"] for hit in hybrid.body["hits"]} >= {"flood warning for the coast", "flood waters rise"}
    assert all(isinstance(hit["score"], float) for hit in hybrid.body["hits"])
    batch = served.post_json("/search", {"queries": [MAGIC, "fire danger"], "k": 3})
    assert batch.status == 200
    assert batch.body["results"][0]["hits"] == []
    assert batch.body["results"][1]["hits"][0]["text"] == "fire danger in the hills"
