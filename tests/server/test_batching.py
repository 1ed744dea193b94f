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


def test_a_large_request_is_searched_in_slices_taken_in_turn(collection: Collection) -> None:
    """A small request that arrives behind a large one waits for one slice of it, not for all of it."""
    counting = CountingCollection(collection)
    batcher = SearchBatcher(counting)  # type: ignore[arg-type]
    big_request, small_request = SearchRequest.of(50), SearchRequest.of(5)
    big_queries = [f"flood warning {number}" for number in range(100)]
    finished: list[str] = []

    async def tracked(name: str, queries: list[str], request: SearchRequest) -> list:
        results = await batcher.search(queries, request)
        finished.append(name)
        return results

    async def run() -> tuple[list, list]:
        await batcher.start()
        try:
            big = asyncio.create_task(tracked("big", big_queries, big_request))
            await asyncio.sleep(0)  # the big request is in line first
            small = asyncio.create_task(tracked("small", ["cricket"], small_request))
            return await big, await small
        finally:
            await batcher.stop()

    big_results, small_results = asyncio.run(run())
    assert finished == ["small", "big"]
    assert counting.calls[0] == (8, big_request) and counting.calls[1] == (1, small_request)
    assert [size for size, _ in counting.calls[2:]] == [8] * 11 + [4]  # the rest of the big one, a slice at a time
    assert small_results == [collection.search("cricket", k=5)]
    # Every query's own hits, in order (searched as the slices were: the exact backend orders ties by batch).
    assert big_results == [hits for start in range(0, 100, 8) for hits in collection.search(big_queries[start:start + 8], k=50)]


def test_requests_asking_the_same_share_calls_and_take_turns(collection: Collection) -> None:
    """Two large requests with the same options go together, a slice of each per call, and both finish."""
    counting = CountingCollection(collection)
    batcher = SearchBatcher(counting)  # type: ignore[arg-type]
    request = SearchRequest.of(3)
    first, second = [f"rain {number}" for number in range(20)], [f"fire {number}" for number in range(12)]

    async def run() -> list:
        await batcher.start()
        try:
            return await asyncio.gather(batcher.search(first, request), batcher.search(second, request))
        finally:
            await batcher.stop()

    first_results, second_results = asyncio.run(run())
    assert [size for size, _ in counting.calls] == [16, 12, 4]  # 8 + 8, then 8 + 4, then the first's last 4
    assert first_results == collection.search(first, k=3) and second_results == collection.search(second, k=3)


def test_a_request_whose_client_went_away_is_not_searched_further(collection: Collection) -> None:
    counting = CountingCollection(collection)
    batcher = SearchBatcher(counting)  # type: ignore[arg-type]

    async def run() -> list:
        await batcher.start()
        try:
            abandoned = asyncio.create_task(batcher.search([f"flood {number}" for number in range(100)], SearchRequest.of(3)))
            await asyncio.sleep(0)
            kept = asyncio.create_task(batcher.search(["rain"], SearchRequest.of(2)))
            await asyncio.sleep(0)
            abandoned.cancel()
            return await kept
        finally:
            await batcher.stop()

    assert len(asyncio.run(run())[0]) == 2
    assert sum(size for size, request in counting.calls if request.k == 3) <= 8  # at most the slice already running


def test_an_update_by_another_process_is_picked_up_with_no_search_and_the_watch_stops_with_the_batcher(
        collection: Collection, fake_encoder) -> None:
    """The watch of manifest.json refreshes on the search thread by itself (issue 13: /health counts an update within a second)."""
    batcher = SearchBatcher(collection)

    async def run() -> int:
        await batcher.start()
        try:
            with Collection.open(collection.path, encoder=fake_encoder) as other:
                other.remove([0, 1, 2])
            deadline = asyncio.get_running_loop().time() + 5
            while len(batcher.collection) == 300 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)  # no search, no check_for_update: only the watch can see it
            return len(batcher.collection)
        finally:
            await batcher.stop()

    assert asyncio.run(run()) == 297
    assert batcher._watcher is not None and batcher._watcher.done()
