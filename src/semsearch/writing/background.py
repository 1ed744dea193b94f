"""A writer thread of the build: stores each embedded batch while the next ones are embedded."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np

from semsearch.documents import Document

# Embedded batches waiting for the writer: enough to ride out a slow write, few enough to bound memory.
WRITE_QUEUE_BATCHES = 2

WriteBatch = Callable[[list[Document], np.ndarray], None]


class BackgroundWriter:
    """Runs ``write(batch, vectors)`` in a thread of its own, in order.

    An error in the writer stops the build at the next ``put`` or at ``close``; batches queued
    after it are dropped. ``close`` writes what is queued, so an interrupted build keeps every
    batch that was completely embedded.
    """

    def __init__(self, write: WriteBatch, depth: int = WRITE_QUEUE_BATCHES) -> None:
        self._write = write
        self._queue: queue.Queue[tuple[list[Document], np.ndarray] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="semsearch-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as error:  # handed to the main thread
                    self._error = error

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, batch: list[Document], vectors: np.ndarray) -> None:
        self._raise_error()
        self._queue.put((batch, vectors))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise_error()
