"""What lets an interrupted build resume from its last completed batch instead of from zero.

A build writes into a workspace beside its target, ``.NAME.building``, whose name does not
depend on the process, so the next run can find it. In it:

- ``build.json``: what is being built (source file, its size and modification time, corpus
  options, encoder, backend). ``--resume`` continues only a build of the same thing.
- ``checkpoint.vectors``: every embedded vector so far with its document id (int64 id, then
  float32 vector, a record per document), appended and fsynced batch by batch *before* the
  batch's documents are committed to ``documents.sqlite``.
- ``documents.sqlite``, journaled (WAL) while building, one transaction per batch.

- ``index-snapshot/``: the index as saved every few minutes and when a build is interrupted,
  with ``rows.json`` (written last) saying how many checkpoint records it holds.

So after a crash at any moment the store holds whole batches only, and the vector file holds at
least as many rows as the store holds documents: the committed count is the store's row count,
extra vector rows are cut off, the index is loaded from the snapshot (if any) and refilled from
the vector file past it, and embedding resumes at the next document of the corpus. The workspace
is locked while a build runs in it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from semsearch.backends import VectorIndex, backend_class
from semsearch.errors import CollectionError
from semsearch.storage.atomic import sync_files

PLAN_FILE = "build.json"
VECTORS_CHECKPOINT = "checkpoint.vectors"
LOCK_FILE = ".lock"
SNAPSHOT = "index-snapshot"
SNAPSHOT_ROWS = "rows.json"
# What exists only while building; removed before the workspace becomes the collection.
WORK_FILES = (PLAN_FILE, VECTORS_CHECKPOINT, LOCK_FILE)
WORK_DIRECTORIES = (SNAPSHOT, f"{SNAPSHOT}.new", f"{SNAPSHOT}.old")


def workspace_path(target: Path) -> Path:
    """Beside the target, on the same file system, so the final rename is atomic."""
    return target.with_name(f".{target.name}.building")


class VectorCheckpoint:
    """(id, vector) records appended to a file, each append on disk before it returns."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.record = np.dtype([("id", "<i8"), ("vector", "<f4", (dim,))])
        self._stream: BinaryIO = path.open("ab")
        self.rows = self._stream.tell() // self.record.itemsize

    def truncate(self, rows: int) -> None:
        """Forget records past ``rows``: vectors of a batch whose documents were never committed."""
        if rows > self.rows:
            raise CollectionError(
                f"{self.path}: holds {self.rows:,} vectors for {rows:,} stored documents; leave out --resume to start again"
            )
        self._stream.truncate(rows * self.record.itemsize)
        self._stream.seek(0, os.SEEK_END)
        self.rows = rows

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        records = np.empty(len(ids), dtype=self.record)
        records["id"] = ids
        records["vector"] = vectors
        self._stream.write(records.tobytes())
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self.rows += len(records)

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """The ids and vectors of records [start, stop), read from disk (memory-mapped, not held)."""
        if stop <= start:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.record["vector"].shape[0]), dtype=np.float32)
        mapped = np.memmap(self.path, dtype=self.record, mode="r", shape=(self.rows,))
        records = np.array(mapped[start:stop])
        del mapped
        return records["id"].astype(np.int64), np.ascontiguousarray(records["vector"], dtype=np.float32)

    def slices(self, start: int, size: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """The records from ``start`` on, ``size`` at a time, as (records read so far, ids, vectors)."""
        for first in range(start, self.rows, size):
            stop = min(self.rows, first + size)
            yield stop, *self.read(first, stop)

    def close(self) -> None:
        self._stream.close()


class IndexSnapshots:
    """The index saved now and then, so a resumed build refills only the vectors added after it.

    Only for indexes that can be loaded and added to: not a reducer's index (its reducer may
    not be fitted yet) nor one that cannot take additions (annoy).
    """

    def __init__(self, directory: Path, index: VectorIndex, every_seconds: float) -> None:
        self.directory = directory / SNAPSHOT
        self.enabled = index.supports_updates and index.reducer_spec() is None
        self.every_seconds = every_seconds
        self.rows = 0
        self._last = time.monotonic()

    def due(self) -> bool:
        return self.enabled and time.monotonic() - self._last >= self.every_seconds

    def save(self, index: VectorIndex, rows: int) -> None:
        """Written beside the last one and swapped in, ``rows.json`` last: a torn snapshot is never used."""
        if not self.enabled or rows <= self.rows:
            return
        fresh, old = self.directory.with_name(f"{SNAPSHOT}.new"), self.directory.with_name(f"{SNAPSHOT}.old")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        index.save(fresh)
        sync_files(fresh)
        (fresh / SNAPSHOT_ROWS).write_text(json.dumps({"rows": rows}), encoding="utf-8")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            os.rename(self.directory, old)
        os.rename(fresh, self.directory)
        shutil.rmtree(old, ignore_errors=True)
        self.rows, self._last = rows, time.monotonic()

    def restore(self, index: VectorIndex, committed: int) -> tuple[VectorIndex, int]:
        """The newest complete snapshot of at most ``committed`` rows and its row count, else ``index`` and 0."""
        if not self.enabled:
            return index, 0
        candidates = []
        for name in (SNAPSHOT, f"{SNAPSHOT}.new", f"{SNAPSHOT}.old"):
            try:
                rows = json.loads((self.directory.with_name(name) / SNAPSHOT_ROWS).read_text(encoding="utf-8"))["rows"]
            except (OSError, ValueError, KeyError):
                continue
            if rows <= committed:
                candidates.append((rows, self.directory.with_name(name)))
        for rows, directory in sorted(candidates, reverse=True):
            try:
                loaded = backend_class(index.name).load(directory, index.dim, index.params, mmap=False)
            except Exception:  # damaged: try an older one, or refill from zero
                continue
            if len(loaded) == rows:
                self.rows = rows
                return loaded, rows
        return index, 0


class BuildWorkspace:
    """The locked working directory of one build; see the module docstring."""

    def __init__(self, target: Path, plan: dict[str, Any]) -> None:
        self.target = target
        self.path = workspace_path(target)
        self.plan = json.loads(json.dumps(plan, default=str))  # as it reads back from build.json
        self.resumed = False
        self.resumed_at = 0  # documents already stored when a resumed build went on
        self._lock: BinaryIO | None = None

    def open(self, *, resume: bool) -> BuildWorkspace:
        """Continue the interrupted build of the same plan when ``resume``, else start empty."""
        if self.path.exists() and resume:
            self._take_lock()
            previous = self._read_plan()
            if previous != self.plan:
                self.release()
                differences = sorted(key for key in set(previous) | set(self.plan) if previous.get(key) != self.plan.get(key))
                raise CollectionError(
                    f"{self.target}: the interrupted build in {self.path} differs in {', '.join(differences)}; "
                    "run the same command as before, or leave out --resume to start again"
                )
            self.resumed = True
            return self
        if self.path.exists():
            self._take_lock()  # refuses while another build is running here
            self.release()
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self._take_lock()
        temporary = self.path / f".{PLAN_FILE}.tmp"
        temporary.write_text(json.dumps(self.plan, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, self.path / PLAN_FILE)
        return self

    def _read_plan(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / PLAN_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def _take_lock(self) -> None:
        # A POSIX record lock, not flock: forked embedding workers do not inherit it, so it is
        # free the moment the build process dies, even while its workers wind down.
        self._lock = (self.path / LOCK_FILE).open("ab")
        try:
            fcntl.lockf(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise CollectionError(f"{self.target}: another build is writing it (in {self.path}); wait for it to finish") from None

    def remove_work_files(self) -> None:
        """Leave only the collection's own files, for the manifest and the final rename."""
        for name in WORK_FILES:
            (self.path / name).unlink(missing_ok=True)
        for name in WORK_DIRECTORIES:
            shutil.rmtree(self.path / name, ignore_errors=True)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def discard(self) -> None:
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)
