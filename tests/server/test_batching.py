"""SearchBatcher: queries that arrive together are searched together, grouped by request, answered in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from semsearch import Collection
from semsearch.errors import SemsearchError
from semsearch.search.query import SearchRequest
from semsearch.server.batching import SearchBatcher


class CountingCollection:
    """A real collection whose search_request calls are recorded."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.calls: list[tuple[int, SearchRequest]] = []

    def search_request(self, queries: list[str], request: SearchRequest):  # noqa: ANN201
        self.calls.append((len(queries), request))
        return self.collection.search_request(queries, request)

    def refresh(self) -> bool:
        return False

    def __len__(self) -> int:
        return len(self.collection)


@pytest.fixture
def collection(fake_encoder, tmp_path: Path, sample_csv: Path) -> Collection:
    built = Collection.build(sample_csv, tmp_path / "news.semsearch", encoder=fake_encoder, backend="exact", limit=300)
    yield built
    built.close()


def test_concurrent_queries_go_in_one_batch_per_request(collection: Collection) -> None:
    counting = CountingCollection(collection)
    batcher = SearchBatcher(counting)  # type: ignore[arg-type]
    three, five = SearchRequest.of(3), SearchRequest.of(5)

    async def run() -> list:
        await batcher.start()
        try:
            return await asyncio.gather(
                batcher.search(["flood", "fire"], three), batcher.search(["cricket"], five), batcher.search(["rain"], three),
            )
        finally:
            await batcher.stop()

    first, second, third = asyncio.run(run())
    assert [len(hits) for hits in first] == [3, 3] and [len(hits) for hits in second] == [5] and len(third[0]) == 3
    assert first[0] == collection.search("flood", k=3)  # each query gets its own hits back
    assert third[0] == collection.search("rain", k=3)
    assert sorted(size for size, _ in counting.calls) == [1, 3]  # the three k=3 queries shared one call


def test_an_error_reaches_the_waiting_request_and_the_thread_goes_on(collection: Collection) -> None:
    batcher = SearchBatcher(collection)

    async def run() -> tuple[BaseException | None, list]:
        await batcher.start()
        try:
            failed = None
            try:
                await batcher.search(["flood"], SearchRequest.of(3, no_such_parameter=1))
            except SemsearchError as error:
                failed = error
            return failed, await batcher.search(["flood"], SearchRequest.of(2))
        finally:
            await batcher.stop()

    failed, results = asyncio.run(run())
    assert failed is not None and "no_such_parameter" in str(failed)
    assert len(results[0]) == 2
