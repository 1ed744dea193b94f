"""SearchBatcher: one search thread per server process, fed in batches.

Encoding is most of the cost of a search, and the encoder does a batch of eight queries in
about a third of the time per query it takes for one. Requests that arrive while a batch is
being searched wait and go together in the next, so a loaded server batches by itself and
an idle one answers a lone query at once, with no timer. One thread also means the SQLite
connection and the index are never used by two threads at the same time, and that picking up
an update (`semsearch add` or `remove` while serving) never races a search.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from semsearch.collection import Collection
from semsearch.documents import Hit
from semsearch.errors import SemsearchError
from semsearch.search.query import SearchRequest

# uvicorn configures its own loggers only; this one shows beside its startup lines.
logger = logging.getLogger("uvicorn.error")

# Enough to amortise the encoder's per-call cost; small enough that one batch stays short.
MAX_BATCH = 64
# How often, at most, the server looks at manifest.json for an update (one small file read).
REFRESH_SECONDS = 1.0


@dataclass
class _Pending:
    """One query waiting for the search thread; queries with equal requests share one search call."""

    query: str
    request: SearchRequest
    future: asyncio.Future[list[Hit]] = field(repr=False)


class SearchBatcher:
    """Searches a collection from asyncio code without blocking the event loop."""

    def __init__(self, collection: Collection, max_batch: int = MAX_BATCH) -> None:
        self.collection = collection
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semsearch-search")
        self._checked = time.monotonic()

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="semsearch-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def search(self, queries: Sequence[str], request: SearchRequest) -> list[list[Hit]]:
        """The hits for each query, as Collection.search_request gives them."""
        if self._queue is None:
            raise RuntimeError("SearchBatcher.start() was not called")
        loop = asyncio.get_running_loop()
        pending = [_Pending(query, request, loop.create_future()) for query in queries]
        for item in pending:
            self._queue.put_nowait(item)
        return list(await asyncio.gather(*(item.future for item in pending)))

    def search_now(self, queries: Sequence[str], request: SearchRequest) -> list[list[Hit]]:
        """A blocking search on the search thread, for warming up before the server listens."""
        return self._executor.submit(self.collection.search_request, list(queries), request).result()

    def _refresh(self) -> None:
        """Switch to the collection's newest generation if an update made one."""
        if time.monotonic() - self._checked < REFRESH_SECONDS:
            return
        self._checked = time.monotonic()
        try:
            if self.collection.refresh():
                logger.info("serving the updated collection: %s documents", f"{len(self.collection):,}")
        except SemsearchError as error:  # a damaged update: keep answering from what is open
            logger.warning("cannot open the updated collection, still serving the one opened before: %s", error)

    def _search_group(self, group: list[_Pending]) -> list[list[Hit]]:
        self._refresh()
        return self.collection.search_request([item.query for item in group], group[0].request)

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            groups: dict[SearchRequest, list[_Pending]] = {}
            for item in batch:
                if not item.future.cancelled():
                    groups.setdefault(item.request, []).append(item)
            for group in groups.values():
                try:
                    results = await loop.run_in_executor(self._executor, self._search_group, group)
                except Exception as error:  # handed to each waiting query; the loop goes on
                    for item in group:
                        if not item.future.done():
                            item.future.set_exception(error)
                    continue
                for item, hits in zip(group, results):
                    if not item.future.done():
                        item.future.set_result(hits)
