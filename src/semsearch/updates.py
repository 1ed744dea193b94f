"""Change a built collection in place: add, replace and remove documents without a full rebuild.

An update never touches a file that readers may have open. It writes a new generation
directory (``generation-N/``) holding a changed copy of the document store and of the index,
then switches to it by replacing manifest.json with ``os.replace``; the manifest names the
files, so a reader sees the old generation or the new one, never a mix. Files the new
manifest no longer names are deleted after the switch (open files stay readable on POSIX),
and whatever a crashed update left behind is deleted by the next one.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from semsearch import __version__
from semsearch.atomic import fsync_directory, recover_directory
from semsearch.backends import VectorIndex
from semsearch.corpus import Corpus
from semsearch.documents import MAX_DOCUMENT_ID, Document, is_document_id
from semsearch.embedding import DEFAULT_BATCH_SIZE, embed_documents
from semsearch.encoders import Encoder, check_same_encoder
from semsearch.errors import CollectionError
from semsearch.manifest import DOCUMENTS_FILE, VECTORS_FILE, describe_files, read_manifest, verify_files, write_manifest
from semsearch.reduce import empty_like, open_index
from semsearch.store import DocumentStore
from semsearch.vector_file import StoredVectors, VectorFileWriter, ids_path

LOCK_FILE = ".update.lock"
GENERATION_PREFIX = "generation-"
# Names a build writes at the top of a collection; deleted once a generation directory replaces them.
BUILD_FILE_PREFIXES = ("documents.sqlite", "vectors.", "index.", "reducer.")
# Vectors moved at once when an update copies or rebuilds: bounds memory to about this many rows.
COPY_CHUNK = 20_000
_ADDED_FILE = ".added.npy"
_DONE = object()  # the end of an iterator, for StageClock.each


@dataclass(frozen=True)
class UpdateRequest:
    """What one update asks for, handed whole from ``apply_update`` down to the code that writes
    the generation, so that its options are listed in one place and a new one is added once."""

    documents: Iterable[Document] = ()
    remove_ids: Iterable[int] = ()
    replace: bool = True
    rebuild: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    progress: bool = False


@dataclass
class UpdateStats:
    """What an update did, for the CLI to report."""

    added: int = 0
    replaced: int = 0
    removed: int = 0
    not_found: tuple[int, ...] = ()
    rebuilt: bool = False
    count: int = 0
    # Seconds spent in each stage (see StageClock): what an update's time is made of.
    seconds: dict[str, float] = field(default_factory=dict)


class StageClock:
    """Seconds per stage of one update, summed over its batches, since embedding and writing take turns.

    An update rewrites the whole collection whatever the size of the change, so its time is worth
    seeing split: what the change costs (embedding) against what the collection's size costs.
    Stages: check (manifest, checksums, encoder), load index, copy store, embed (reading included),
    store (SQLite changes), index (adds and removals in place), vectors (vectors.npy, and the new
    index of a rebuild), save index, sync and switch (fsync, sha256 of the new files, the manifest),
    delete old files.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def each(self, name: str, items: Iterable[Any]) -> Iterator[Any]:
        """The items, the time taken to make each one (not the caller's time between them) counted as ``name``."""
        iterator = iter(items)
        while True:
            with self.stage(name):
                item = next(iterator, _DONE)
            if item is _DONE:
                return
            yield item


def data_directory(path: Path, manifest: dict[str, Any]) -> Path:
    """Where the current files are: the collection itself after a build, ``generation-N`` after updates."""
    generation = int(manifest.get("generation", 0))
    return path if generation == 0 else path / f"{GENERATION_PREFIX}{generation}"


@contextmanager
def update_lock(path: Path) -> Iterator[None]:
    """One update at a time per collection; readers never wait for it."""
    with open(path / LOCK_FILE, "a+b") as stream:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)


def remove_unreferenced(path: Path, manifest: dict[str, Any]) -> None:
    """Delete generation directories and build files the manifest does not name; nothing else."""
    referenced = {name.split("/", 1)[0] for name in manifest["files"]}
    for entry in path.iterdir():
        if entry.name in referenced:
            continue
        if entry.is_dir() and entry.name.startswith(GENERATION_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file() and entry.name.startswith(BUILD_FILE_PREFIXES):
            entry.unlink(missing_ok=True)


def apply_update(path: Path, encoder: Encoder, request: UpdateRequest) -> UpdateStats:
    """Remove ``request.remove_ids``, then add ``request.documents`` (replacing those whose id
    exists when ``request.replace``).

    A ``Corpus`` without an id column numbers its documents after the collection's largest id.
    Any error leaves the collection exactly as it was.
    """
    path = Path(path)
    try:
        recover_directory(path)
        with update_lock(path):
            return _update_locked(path, encoder, request)
    except OSError as error:  # disk full, permissions, a path in the way: before the switch, so nothing changed
        raise CollectionError(f"{path}: the update failed and the collection is as it was: {error}") from None


def _update_locked(path: Path, encoder: Encoder, request: UpdateRequest) -> UpdateStats:
    clock = StageClock()
    with clock.stage("check"):
        manifest = read_manifest(path)
        verify_files(path, manifest)
        check_same_encoder(manifest["encoder"], encoder, str(path))
        remove_unreferenced(path, manifest)
        generation = int(manifest.get("generation", 0)) + 1
        new = path / f"{GENERATION_PREFIX}{generation}"
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir()
    try:
        stats = _write_generation(data_directory(path, manifest), new, manifest, encoder, request, clock)
        with clock.stage("sync and switch"):
            names = sorted(entry.name for entry in new.iterdir())
            for name in names:
                with (new / name).open("rb") as stream:
                    os.fsync(stream.fileno())
            fsync_directory(new)
            updated = {
                **manifest,
                "generation": generation,
                "count": stats.count,
                "semsearch_version": __version__,
                "updated": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
                "files": describe_files(path, [f"{new.name}/{name}" for name in names]),
            }
            write_manifest(path, updated)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    # Switched: what follows only tidies up, and the next update retries whatever fails here.
    with clock.stage("delete old files"):
        try:
            fsync_directory(path)
            remove_unreferenced(path, updated)
        except OSError:
            pass
    stats.seconds = clock.seconds
    return stats


def _write_generation(
    old: Path, new: Path, manifest: dict[str, Any], encoder: Encoder, request: UpdateRequest, clock: StageClock
) -> UpdateStats:
    dim = int(manifest["encoder"]["dim"])
    with clock.stage("load index"):
        index = open_index(old, manifest, mmap=False)
    if not index.supports_updates and not request.rebuild:
        raise CollectionError(
            f"the {index.name} backend cannot add to or remove from a built index; "
            "pass --rebuild (rebuild=True) to rebuild it from the stored vectors, without embedding again"
        )
    stored = StoredVectors(old / VECTORS_FILE) if (old / VECTORS_FILE).is_file() else None
    in_place = not request.rebuild
    stats = UpdateStats(rebuilt=request.rebuild)
    with clock.stage("copy store"):
        store = DocumentStore.open_copy(old / DOCUMENTS_FILE, new / DOCUMENTS_FILE)
    added_file = None
    try:
        wanted = sorted({int(i) for i in request.remove_ids})
        with clock.stage("store"):
            old_ids = store.ids() if (stored is not None or request.rebuild) else None
            gone = store.existing([i for i in wanted if is_document_id(i)])
            store.remove(gone)
            if isinstance(request.documents, Corpus):
                request.documents.first_id = store.max_id() + 1
        stats.removed = len(gone)
        stats.not_found = tuple(sorted(set(wanted) - set(gone)))
        if in_place and gone:
            with clock.stage("index"):
                index.remove(np.asarray(gone, dtype=np.int64))
        replaced: list[int] = []
        if stored is not None or request.rebuild:
            added_file = VectorFileWriter(new / _ADDED_FILE, dim)
        seen: set[int] = set()
        embedded = embed_documents(request.documents, encoder, batch_size=request.batch_size, progress=request.progress)
        for batch, vectors in clock.each("embed", embedded):
            for document in batch:
                if not isinstance(document.id, int) or not is_document_id(document.id):
                    raise CollectionError(f"document id {document.id!r} is not an integer from 0 to {MAX_DOCUMENT_ID}")
            ids = np.fromiter((document.id for document in batch), dtype=np.int64, count=len(batch))
            for document_id in ids.tolist():
                if document_id in seen:
                    raise CollectionError(f"document id {document_id} appears twice in the documents to add")
                seen.add(document_id)
            with clock.stage("store"):
                existing = store.existing(ids)
                if existing and not request.replace:
                    raise CollectionError(
                        f"document id {existing[0]} is in the collection already; upsert (semsearch add) replaces documents"
                    )
                store.remove(existing)
                store.add(batch)
            replaced.extend(existing)
            if in_place:
                with clock.stage("index"):
                    if existing:
                        index.remove(np.asarray(existing, dtype=np.int64))
                    index.add(ids, vectors)
            if added_file is not None:
                with clock.stage("vectors"):
                    added_file.append(vectors, ids)
        stats.replaced = len(replaced)
        stats.added = len(seen) - len(replaced)
        if added_file is not None:
            with clock.stage("vectors"):
                added_file.close()
                assert old_ids is not None
                survivors = old_ids[~np.isin(old_ids, np.asarray(gone + replaced, dtype=np.int64))]
                added = StoredVectors(new / _ADDED_FILE)
                rebuilt = empty_like(index, dim) if request.rebuild else None
                writer = VectorFileWriter(new / VECTORS_FILE, dim) if stored is not None else None
                for chunk_ids, chunk_vectors in chain(_vector_chunks(survivors, stored, index), _vector_chunks(added.ids, added, None)):
                    if rebuilt is not None:
                        rebuilt.add(chunk_ids, chunk_vectors)
                    if writer is not None:
                        writer.append(chunk_vectors, chunk_ids)
                if writer is not None:
                    writer.close()
                if rebuilt is not None:
                    index = rebuilt
                del added
                (new / _ADDED_FILE).unlink()
                ids_path(new / _ADDED_FILE).unlink()
        with clock.stage("save index"):
            index.save(new)
        stats.count = len(store)
    except ValueError as error:  # a backend refusing ids or vectors
        hint = "" if request.rebuild else "; pass --rebuild (rebuild=True) to rebuild the index from the stored vectors"
        raise CollectionError(f"{new.parent}: the update cannot be applied: {error}{hint}") from None
    finally:
        store.close()
        if added_file is not None:
            added_file.close()
    return stats


def _vector_chunks(ids: np.ndarray, stored: StoredVectors | None, index: VectorIndex | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The full vectors of ``ids`` in bounded chunks, from a vectors file or from an index that keeps them."""
    for start in range(0, len(ids), COPY_CHUNK):
        chunk = ids[start : start + COPY_CHUNK]
        if stored is not None:
            yield chunk, stored.vectors(chunk)
        else:
            assert index is not None
            yield chunk, index.vectors(chunk)
