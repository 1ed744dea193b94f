"""SearchBatcher: one search thread per server process, fed in slices, fairly.

Encoding is most of the cost of a search, and the encoder does a batch of eight queries in
about a third of the time per query it takes for one. Requests that arrive while a search is
running wait and go together in the next, so a loaded server batches by itself and an idle one
answers a lone query at once, with no timer. A request of many queries is searched in slices of
at most ``SLICE`` queries, and the thread takes slices from the waiting requests in turn, so a
small request waits for one slice of a large one, not for all of it. One thread also means the
SQLite connection and the index are never used by two threads at the same time, and that
picking up an update (`semsearch add` or `remove` while serving, or a write over HTTP) never races a
search: writes run on the same thread. A watcher looks at manifest.json's identity a few times a second
and refreshes on that thread when it changed, so an update made by another process (or another worker)
is served, and counted by /health and /info, within a second even when no request comes.

A collection whose files vanished or are damaged (an update that cannot be opened, a search
that fails on a missing file) is not searched: every search is a ``CollectionDamaged`` (503)
until a later check, at most once a second, finds it whole again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from semsearch.collection import Collection
from semsearch.documents import Hit
from semsearch.errors import CollectionError, SemsearchError
from semsearch.search.query import SearchRequest
from semsearch.storage.names import MANIFEST

T = TypeVar("T")
# uvicorn configures its own loggers only; this one shows beside its startup lines.
logger = logging.getLogger("uvicorn.error")

# The most queries of one request in one search call: enough for the encoder's batching to pay
# (eight at a time cost about a third each of one at a time), few enough that a call stays short.
SLICE = 8
# The most queries in one call when several waiting requests ask for the same thing (k, mode, filter).
MAX_BATCH = 64
# How often, at most, the server looks at manifest.json for an update (one small file read).
REFRESH_SECONDS = 1.0
# How often the watcher stats manifest.json (no read: its size, mtime and inode), so that an update is
# noticed within a second with no request to look for it. An update replaces the manifest (os.replace),
# so the inode changes even when size and mtime would not.
WATCH_SECONDS = 0.25


class CollectionDamaged(CollectionError):
    """The served collection cannot be searched now: its files vanished or are damaged (the server answers 503)."""


@dataclass(eq=False)
class _Job:
    """One request's queries, searched a slice at a time; its future has every query's hits once all are done."""

    queries: Sequence[str]
    request: SearchRequest
    future: asyncio.Future[list[list[Hit]]] = field(repr=False)
    results: list[list[Hit]] = field(default_factory=list, repr=False)

    @property
    def left(self) -> int:
        return len(self.queries) - len(self.results)

    def next_slice(self, size: int) -> Sequence[str]:
        start = len(self.results)
        return self.queries[start:start + size]


class SearchBatcher:
    """Searches a collection from asyncio code without blocking the event loop.

    Waiting requests are served round-robin: each search call takes the next slice (at most
    ``slice_size`` queries) of the request at the head of the line, with the next slices of other
    waiting requests that ask for the same thing (up to ``max_batch`` queries in all); a request
    with queries left goes to the back of the line once its slice is searched, behind any that
    arrived meanwhile.
    """

    def __init__(self, collection: Collection, max_batch: int = MAX_BATCH, slice_size: int = SLICE) -> None:
        self.collection = collection
        self.max_batch = max_batch
        self.slice_size = slice_size
        self._waiting: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        # manifest.json as it was when this batcher was made (just after the collection was opened), so that an
        # update between then and the watch's first look is not taken for the state served.
        self._seen = self.manifest_identity()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semsearch-search")
        self._checked = time.monotonic()
        self._busy = False  # a search call is on the search thread
        # Why the collection cannot be searched now (its files vanished or are damaged), or None.
        self.damage: str | None = None

    async def start(self, watch: bool = True) -> None:
        """Start taking searches; with ``watch``, also the watcher of manifest.json."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="semsearch-batcher")
        if watch:
            self._watcher = asyncio.create_task(self.watch(), name="semsearch-manifest-watcher")

    async def stop(self) -> None:
        for task in (self._watcher, self._task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._executor.shutdown(wait=True)

    def manifest_identity(self) -> tuple[int, int, int, int] | None:
        """manifest.json's device, inode, size and mtime (ns), or None when it cannot be seen: changed by every update."""
        path = getattr(self.collection, "path", None)  # a stand-in collection (tests) may have none
        if path is None:
            return None
        try:
            seen = os.stat(Path(path) / MANIFEST)  # on the event loop: a stat of one local file, microseconds
        except OSError:
            return None
        return seen.st_dev, seen.st_ino, seen.st_size, seen.st_mtime_ns

    async def watch(self, seconds: float = WATCH_SECONDS) -> None:
        """Refresh, on the search thread, whenever manifest.json changes; while the collection is damaged, look
        again at most once every ``REFRESH_SECONDS`` for its repair. Runs until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(seconds)
            now = self.manifest_identity()
            try:
                if now != self._seen:
                    self._seen = now
                    await loop.run_in_executor(self._executor, self._refresh, True)
                elif self.damage is not None:
                    await loop.run_in_executor(self._executor, self._refresh)
            except Exception:  # _refresh turns the files' troubles into damage; anything else must not end the watch
                logger.exception("looking for an update of the collection failed")

    async def search(self, queries: Sequence[str], request: SearchRequest) -> list[list[Hit]]:
        """The hits for each query, as Collection.search_request gives them."""
        if self._wakeup is None:
            raise RuntimeError("SearchBatcher.start() was not called")
        if not queries:
            return []
        job = _Job(list(queries), request, asyncio.get_running_loop().create_future())
        self._waiting.append(job)
        self._wakeup.set()
        return await job.future

    def search_now(self, queries: Sequence[str], request: SearchRequest) -> list[list[Hit]]:
        """A blocking search on the search thread, for warming up before the server listens."""
        return self._executor.submit(self.collection.search_request, list(queries), request).result()

    async def call(self, function: Callable[[Collection], T]) -> T:
        """``function(collection)`` on the search thread, which alone touches the collection's SQLite
        connection and index: for the document endpoints (get, list, similar)."""
        def run() -> T:
            self._refresh()
            if self.damage is not None:
                raise CollectionDamaged(self.damage)
            return function(self.collection)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def facts(self, function: Callable[[Collection], T]) -> T:
        """``function(collection)`` on the search thread, damaged or not: for /info, whose answer reads the store's
        segments, which a write or a refresh on that thread swaps."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: function(self.collection))  # the one open then

    async def check_for_update(self) -> None:
        """Look for an update (or a repair) now, unless that was done in the last ``REFRESH_SECONDS``: for /health
        and /info, so that they show a change within a second even when no search comes to look first."""
        if self._busy or time.monotonic() - self._checked < REFRESH_SECONDS:
            return  # a search is running, and the search thread looks before its next one
        await asyncio.get_running_loop().run_in_executor(self._executor, self._refresh)

    def _refresh(self, now: bool = False) -> None:
        """Switch to the collection's newest generation if an update made one; notice damage, and its repair.
        At most once every ``REFRESH_SECONDS``, unless ``now`` (the watcher saw the manifest change)."""
        if not now and time.monotonic() - self._checked < REFRESH_SECONDS:
            return
        self._checked = time.monotonic()
        try:
            if self.collection.refresh():
                logger.info("serving the updated collection: %s documents", f"{len(self.collection):,}")
            elif self.damage is not None:  # the manifest is the one open: are its files whole again?
                self._reopen()
        except (SemsearchError, OSError, sqlite3.DatabaseError) as error:  # never the request's doing: the files'
            self._damaged(error)
            return
        if self.damage is not None:
            logger.warning("the collection can be searched again: %s documents", f"{len(self.collection):,}")
            self.damage = None

    def _reopen(self) -> None:
        fresh = Collection.open(self.collection.path, encoder=self.collection.encoder, verify=False)
        stale, self.collection = self.collection, fresh
        stale.close()

    def _damaged(self, error: BaseException) -> None:
        """Answer 503 with ``error``'s message from now until a later check finds the collection whole."""
        message = self.public_message(" ".join(str(error).splitlines()) or type(error).__name__)
        message = f"the collection cannot be searched now: {message}; searches resume once it is whole again"
        if message != self.damage:
            logger.error("%s", message)
        self.damage = message

    def public_message(self, message: str) -> str:
        """``message`` without the collection's place on the server: the directory by its name only."""
        path = Path(self.collection.path)
        for shown in sorted({str(path.resolve()), str(path.absolute()), str(path)}, key=len, reverse=True):
            message = message.replace(shown, path.name)
        return message

    def _search(self, queries: list[str], request: SearchRequest) -> list[list[Hit]]:
        self._refresh()
        if self.damage is not None:
            raise CollectionDamaged(self.damage)
        try:
            return self.collection.search_request(queries, request)
        except (CollectionError, OSError, sqlite3.DatabaseError) as error:
            if isinstance(error, sqlite3.DatabaseError) and type(error) is not sqlite3.DatabaseError:
                raise  # an OperationalError and the like may be the request's doing, not the files'
            self._damaged(error)
            raise CollectionDamaged(self.damage) from None

    def _next_call(self) -> list[tuple[_Job, Sequence[str]]]:
        """The slices the next search call takes: the head of the line's, and those of later jobs asking the same."""
        head = self._waiting.popleft()
        taken = [(head, head.next_slice(self.slice_size))]
        room = self.max_batch - len(taken[0][1])
        for job in list(self._waiting):
            if room <= 0:
                break
            if job.request == head.request:
                queries = job.next_slice(min(self.slice_size, room))
                taken.append((job, queries))
                room -= len(queries)
                self._waiting.remove(job)
        return taken

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
            self._waiting = deque(job for job in self._waiting if not job.future.done())  # a client that went away
            if not self._waiting:
                continue
            taken = self._next_call()
            queries = [query for _, part in taken for query in part]
            self._busy = True
            try:
                results = await loop.run_in_executor(self._executor, self._search, queries, taken[0][0].request)
            except Exception as error:  # handed to each request in the call; the loop goes on
                for job, _ in taken:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            finally:
                self._busy = False
            position = 0
            for job, part in taken:
                job.results.extend(results[position:position + len(part)])
                position += len(part)
                if job.future.done():
                    continue
                if job.left:
                    self._waiting.append(job)
                else:
                    job.future.set_result(job.results)
