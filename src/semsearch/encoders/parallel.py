"""Embed a stream of Documents on every core this process may use, in order, with bounded memory.

Two ways to use the cores, chosen by ``parallel``:

- ``processes`` (the default on Linux): one forked worker per core, each with one BLAS thread.
  The default encoder's tokenizer is pure Python and holds the GIL; on the 2-core machine
  processes were the fastest of the three ways, 4,269 texts/s against 4,042 for threads
  (BENCHMARKS.md, "Local embedding throughput"). Workers inherit the encoder by fork;
  texts go to them as JSON and vectors come back as raw float32 bytes, so nothing is pickled.
- ``threads``: one thread per core sharing one encoder with one BLAS thread, for encoders whose
  work releases the GIL, and for platforms without fork.

Either way at most ``workers + 1`` batches are in flight, so memory is bounded by the batch
size, never by the corpus.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from semsearch.documents import Document
from semsearch.encoders import Encoder
from semsearch.cpus import available_cpus
from semsearch.errors import SemsearchError

DEFAULT_BATCH_SIZE = 2000
PARALLEL_MODES = ("processes", "threads", "serial")

_OK = b"\x00"
_FAILED = b"\x01"


def default_parallel() -> str:
    """Processes where they can be forked (they measured faster), threads elsewhere."""
    return "processes" if "fork" in multiprocessing.get_all_start_methods() else "threads"


def batched(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(documents)
    while batch := list(islice(iterator, size)):
        yield batch


def _texts(batch: list[Document]) -> list[str]:
    return [document.text for document in batch]


def _process_worker(connection: Connection, encoder: Encoder, inherited: list[Connection]) -> None:
    """Embed batches until the parent sends an empty message or goes away. Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the build's handler, inherited by fork
    for other in inherited:  # the parent's ends of this and earlier workers' pipes, copied by fork
        other.close()
    encoder = encoder.with_threads(1)
    while True:
        try:
            payload = connection.recv_bytes()
        except (EOFError, OSError):
            return
        if not payload:
            return
        try:
            vectors = np.ascontiguousarray(encoder.encode(json.loads(payload)), dtype=np.float32)
            reply = _OK + vectors.tobytes()
        except Exception as error:  # reported to the parent, which raises it
            reply = _FAILED + f"{type(error).__name__}: {error}".encode("utf-8", "replace")
        try:
            connection.send_bytes(reply)
        except (BrokenPipeError, OSError):
            return


class ProcessEmbedder:
    """Forked workers, one batch each at a time; results come back in the order batches went in."""

    def __init__(self, encoder: Encoder, workers: int) -> None:
        self.dim = encoder.dim
        context = multiprocessing.get_context("fork")
        self._connections: list[Connection] = []
        self._processes: list[Any] = []
        for _ in range(workers):
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(
                target=_process_worker, args=(child_end, encoder, [*self._connections, parent_end]), daemon=True, name="semsearch-embed"
            )
            process.start()
            child_end.close()
            self._connections.append(parent_end)
            self._processes.append(process)

    def map(self, batches: Iterable[list[Document]]) -> Iterator[tuple[list[Document], np.ndarray]]:
        iterator = iter(batches)
        idle = deque(range(len(self._connections)))
        pending: deque[tuple[int, list[Document]]] = deque()
        exhausted = False

        def dispatch() -> None:
            nonlocal exhausted
            while idle and not exhausted:
                batch = next(iterator, None)
                if batch is None:
                    exhausted = True
                    return
                worker = idle.popleft()
                self._connections[worker].send_bytes(json.dumps(_texts(batch), ensure_ascii=False).encode("utf-8"))
                pending.append((worker, batch))

        dispatch()
        while pending:
            worker, batch = pending.popleft()
            vectors = self._receive(worker, len(batch))
            idle.append(worker)
            dispatch()  # keep the worker busy while the caller writes this batch
            yield batch, vectors

    def _receive(self, worker: int, rows: int) -> np.ndarray:
        try:
            reply = self._connections[worker].recv_bytes()
        except (EOFError, OSError):
            process = self._processes[worker]
            process.join(timeout=1)
            raise SemsearchError(f"embedding worker {worker} stopped unexpectedly (exit code {process.exitcode})") from None
        if reply[:1] != _OK:
            raise SemsearchError(f"embedding failed in worker {worker}: {reply[1:].decode('utf-8', 'replace')}")
        # A copy: a view of the bytes is read-only, which some index libraries refuse.
        return np.frombuffer(reply, dtype=np.float32, offset=1).reshape(rows, self.dim).copy()

    def close(self) -> None:
        """An empty message ends each worker; any still busy after a moment is terminated."""
        for connection in self._connections:
            try:
                connection.send_bytes(b"")
            except OSError:
                pass  # that worker is gone already
            connection.close()
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()


class ThreadEmbedder:
    """Threads sharing one encoder limited to one BLAS thread each."""

    def __init__(self, encoder: Encoder, workers: int) -> None:
        self._encoder = encoder.with_threads(1)
        self._workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="semsearch-embed")

    def map(self, batches: Iterable[list[Document]]) -> Iterator[tuple[list[Document], np.ndarray]]:
        pending: deque[tuple[list[Document], Future[np.ndarray]]] = deque()
        for batch in batches:
            pending.append((batch, self._pool.submit(self._encoder.encode, _texts(batch))))
            if len(pending) > self._workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class SerialEmbedder:
    """The encoder in this thread, with all its threads: the simplest path, and the reference."""

    def __init__(self, encoder: Encoder, workers: int = 1) -> None:
        self._encoder = encoder

    def map(self, batches: Iterable[list[Document]]) -> Iterator[tuple[list[Document], np.ndarray]]:
        for batch in batches:
            yield batch, self._encoder.encode(_texts(batch))

    def close(self) -> None:
        pass


def progress_bar(total: int | None, enabled: bool, initial: int = 0, activity: str = "embedding") -> Any:
    """Texts done, texts per second and time left, on stderr."""
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, unit=" texts", unit_scale=True, disable=not enabled, dynamic_ncols=True, desc=activity, smoothing=0.1
    )


def make_embedder(encoder: Encoder, parallel: str | None = None, workers: int | None = None) -> ProcessEmbedder | ThreadEmbedder | SerialEmbedder:
    """An embedder for ``parallel`` (processes, threads or serial) with ``workers`` workers (default: one per CPU)."""
    parallel = parallel or default_parallel()
    workers = workers or available_cpus()
    if parallel not in PARALLEL_MODES:
        raise SemsearchError(f"unknown parallel mode {parallel!r}; use one of {', '.join(PARALLEL_MODES)}")
    if workers < 1:
        raise SemsearchError(f"workers must be at least 1, got {workers}")
    if parallel == "serial" or workers == 1:
        return SerialEmbedder(encoder)
    if parallel == "processes":
        if not encoder.fork_safe:
            return SerialEmbedder(encoder)  # it spreads each batch over its own threads instead
        if "fork" not in multiprocessing.get_all_start_methods():
            raise SemsearchError("embedding in processes needs fork, which this platform lacks; use --parallel threads")
        return ProcessEmbedder(encoder, workers)
    return ThreadEmbedder(encoder, workers)


def embed_documents(
    documents: Iterable[Document],
    encoder: Encoder,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    total: int | None = None,
    progress: bool = False,
    parallel: str | None = "serial",
    workers: int | None = None,
) -> Iterator[tuple[list[Document], np.ndarray]]:
    """Yield each batch with its vectors, in order; the bar counts texts and shows texts per second and time left.

    Serial by default, which is safe in any process (a server's threads and fork do not mix);
    pass ``parallel`` to use every core, as a build does (None: the platform's default, see ``default_parallel``).
    """
    embedder = make_embedder(encoder, parallel, workers)
    try:
        with progress_bar(total, progress) as bar:
            for batch, vectors in embedder.map(batched(documents, batch_size)):
                yield batch, vectors
                bar.update(len(batch))
    finally:
        embedder.close()
