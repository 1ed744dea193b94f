"""Change a collection in place: add, replace and remove documents, in time and writes that are the change's.

An update never touches a file that readers may have open. The documents it adds go into a new
segment (``segment-N/``: its own store, index and vectors, see ``segment_writer``); the documents
it removes or replaces are recorded as deletions of the segments that hold them (a small
``deleted-N.SEGMENT.npy`` each, see ``storage.deletions``). It then switches to the new
manifest with ``os.replace``; the manifest names the files, so a reader sees the old
collection or the new one, never a mix. Files the new manifest no longer names are deleted
after the switch (open files stay readable on POSIX), and whatever a crashed update left
behind is deleted by the next one. Only new files are hashed.

A version-1 collection becomes version 2 on its first update, without copying: its files are
its first segment, whose keys are its ids.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.documents import MAX_DOCUMENT_ID, Document, DocumentId, check_id_kind, id_problem
from semsearch.encoders import Encoder
from semsearch.encoders.parallel import DEFAULT_BATCH_SIZE, embed_documents
from semsearch.errors import CollectionError
from semsearch.search.segment_view import OpenSegment, SegmentedDocuments
from semsearch.storage.atomic import fsync_directory
from semsearch.storage.deletions import write_deletions
from semsearch.storage.layout import describe_files, generation_of, next_manifest, remove_unreferenced, write_manifest
from semsearch.storage.segments import SegmentEntry, deletions_name, id_kind, segment_directory
from semsearch.writing.segment_writer import SegmentWriter


@dataclass(frozen=True)
class UpdateRequest:
    """What one update asks for, handed whole from the facade down to the code that writes it,
    so that its options are listed in one place and a new one is added once. (``rebuild`` is
    accepted for the commands that still pass it: a segment's index is always new, so every
    backend takes additions, and removals are deletion records.)"""

    documents: Iterable[Document] = ()
    remove_ids: Iterable[DocumentId] = ()
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
    not_found: tuple[DocumentId, ...] = ()
    rebuilt: bool = False
    count: int = 0
    segments: int = 0
    merged: int = 0  # segments the merge policy merged after the update (see writing.merging)
    # Seconds spent in each stage (see StageClock): what an update's time is made of.
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateResult:
    """A finished update: what it did and the manifest it switched to."""

    stats: UpdateStats
    manifest: dict[str, Any]


class StageClock:
    """Seconds per stage of one update, summed over its batches, since embedding and writing take turns.

    Stages: embed (reading included), store and index (the new segment's), deletions, sync and
    switch (fsync, sha256 of the new files, the manifest), delete old files.
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


def apply_update(path: Path, manifest: dict[str, Any], encoder: Encoder, request: UpdateRequest,
                 segments: list[OpenSegment]) -> UpdateResult:
    """Remove ``request.remove_ids``, then add ``request.documents`` (replacing those whose id
    exists when ``request.replace``), as a new segment and deletion records of the collection at ``path``.

    ``manifest`` and ``segments`` are the collection's current ones, checked by the caller, who
    holds the update lock. Any error before the switch leaves the collection exactly as it was.
    """
    clock = StageClock()
    remove_unreferenced(path, manifest)
    generation = generation_of(manifest) + 1
    change = Change(path, manifest, segments, generation, clock)
    try:
        change.remove(request.remove_ids)
        change.add(request, encoder)
        updated = change.switch()
    except BaseException:
        change.discard()
        raise
    # Switched: what follows only tidies up, and the next update retries whatever fails here.
    with clock.stage("delete old files"):
        try:
            fsync_directory(path)
            remove_unreferenced(path, updated)
        except OSError:
            pass
    change.stats.seconds = clock.seconds
    return UpdateResult(change.stats, updated)


class Change:
    """One update's deletions and new segment, made step by step, then switched to at once."""

    def __init__(self, path: Path, manifest: dict[str, Any], segments: list[OpenSegment], generation: int, clock: StageClock) -> None:
        self.path, self.manifest, self.segments, self.generation, self.clock = path, manifest, segments, generation, clock
        self.documents = SegmentedDocuments(segments)
        self.kind = id_kind(manifest)
        self.next_key = next_key(manifest, segments)
        self.deleted: dict[str, set[int]] = {}  # segment name -> keys this update deletes from it
        self.writer: SegmentWriter | None = None
        self.stats = UpdateStats()
        self.new_files: list[str] = []

    def _delete(self, segment: OpenSegment, key: int) -> None:
        self.deleted.setdefault(segment.entry.name, set()).add(key)

    def _is_live(self, located: tuple[OpenSegment, int]) -> bool:
        segment, key = located
        return key not in self.deleted.get(segment.entry.name, ())

    def remove(self, ids: Iterable[DocumentId]) -> None:
        requested = list(dict.fromkeys(ids))
        with self.clock.stage("deletions"):
            located = self.documents.live_keys(requested)
            for segment, key in located.values():
                self._delete(segment, key)
        self.stats.removed = len(located)
        self.stats.not_found = tuple(document_id for document_id in requested if document_id not in located)

    def add(self, request: UpdateRequest, encoder: Encoder) -> None:
        seen: set[DocumentId] = set()
        embedded = embed_documents(request.documents, encoder, batch_size=request.batch_size, progress=request.progress)
        for batch, vectors in self._timed(embedded):
            with self.clock.stage("store and index"):
                self._check_ids(batch, seen)
                located = {i: where for i, where in self.documents.live_keys([d.id for d in batch]).items() if self._is_live(where)}
                if located and not request.replace:
                    first = next(iter(located))
                    raise CollectionError(f"document id {first!r} is in the collection already; upsert (semsearch add) replaces documents")
                for where in located.values():
                    self._delete(*where)
                self.stats.replaced += len(located)
                if self.next_key + len(batch) > MAX_DOCUMENT_ID + 1:
                    raise CollectionError(f"{self.path}: no keys are left for new documents (its ids reach 2^63 - 1); rebuild it")
                keys = np.arange(self.next_key, self.next_key + len(batch), dtype=np.int64)
                self.next_key += len(batch)
                if self.writer is None:
                    template = max(self.segments, key=lambda segment: segment.entry.rows).index
                    self.writer = SegmentWriter(self.path / segment_directory(self.generation), template, int(self.manifest["encoder"]["dim"]))
                self.writer.add(batch, keys, vectors)
        self.stats.added = len(seen) - self.stats.replaced

    def _timed(self, embedded: Iterable[tuple[list[Document], np.ndarray]]) -> Iterator[tuple[list[Document], np.ndarray]]:
        iterator = iter(embedded)
        while True:
            with self.clock.stage("embed"):
                item = next(iterator, None)
            if item is None:
                return
            yield item

    def _check_ids(self, batch: list[Document], seen: set[DocumentId]) -> None:
        try:
            check_id_kind(batch, self.kind)
        except ValueError as error:
            raise CollectionError(str(error)) from None
        for document in batch:
            if (problem := id_problem(document.id, strings=self.kind == "string")) is not None:
                raise CollectionError(problem)
            if document.id in seen:
                raise CollectionError(f"document id {document.id!r} appears twice in the documents to add")
            seen.add(document.id)

    def switch(self) -> dict[str, Any]:
        """Write the deletion records, finish the new segment, and replace the manifest with one that names them."""
        files = dict(self.manifest["files"])
        entries: list[SegmentEntry] = []
        with self.clock.stage("deletions"):
            for segment in self.segments:
                entry = segment.entry
                gone = self.deleted.get(entry.name)
                if gone:
                    keys = np.union1d(segment.deleted, np.fromiter(gone, dtype=np.int64, count=len(gone)))
                    if entry.deleted is not None:
                        files.pop(entry.deleted, None)
                    name = deletions_name(self.generation, entry)
                    write_deletions(self.path, name, keys)
                    self.new_files.append(name)
                    entry = entry.with_deletions(name, len(keys))
                entries.append(entry)
        with self.clock.stage("sync and switch"):
            if self.writer is not None:
                entry, names = self.writer.finish(segment_directory(self.generation), segment_directory(self.generation))
                self.writer = None
                entries.append(entry)
                self.new_files += [f"{entry.directory}/{name}" for name in names]
            kept = [entry for entry in entries if entry.live] or entries[-1:]
            for dropped in (entry for entry in entries if entry not in kept):  # every document of it deleted: its files go
                files = {name: value for name, value in files.items() if not in_segment(name, dropped)}
            files.update(describe_files(self.path, self.new_files))
            updated = next_manifest(self.manifest, generation=self.generation, files=files, segments=kept, next_key=self.next_key,
                                    ids=self.kind)
            write_manifest(self.path, updated)
        self.stats.count = int(updated["count"])
        self.stats.segments = len(kept)
        return updated

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.discard()
        for name in self.new_files:
            if "/" not in name:
                (self.path / name).unlink(missing_ok=True)


def next_key(manifest: dict[str, Any], segments: list[OpenSegment]) -> int:
    """The key the next new document gets. A version-1 collection's keys are its ids: new keys come after the
    largest, and its one segment's range is set to end there."""
    if manifest["format_version"] >= 2:
        return int(manifest["next_key"])
    following = segments[0].store.max_key() + 1
    segments[0].entry = replace(segments[0].entry, first_key=0, last_key=max(following - 1, 0))
    return following


def in_segment(name: str, segment: SegmentEntry) -> bool:
    """Whether a manifest's file name is one of ``segment``'s files (its directory's, or its deletion record)."""
    if name == segment.deleted:
        return True
    if segment.directory:
        return name.startswith(segment.prefix)
    return "/" not in name and not name.startswith("deleted-")
