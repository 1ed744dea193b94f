"""Open every segment a checked manifest names: its index, orphans, store and deletions, each checked first.

The manifest has been read and checked (``storage.layout.read_manifest``) and its files found in
place (``verify_files``); what is opened here is checked again for what it holds, so that a
crafted collection is one CollectionError line, never a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semsearch.backends.checks import checked_once
from semsearch.backends.factory import open_index
from semsearch.backends.reachability import Orphans
from semsearch.errors import CollectionError, SemsearchError
from semsearch.search.segment_view import OpenSegment
from semsearch.storage.deletions import read_deletions
from semsearch.storage.layout import DOCUMENTS_FILE, GENERATION_PREFIX, generation_of
from semsearch.storage.segments import SegmentEntry, index_manifest, segments_of
from semsearch.storage.store import DocumentStore


def open_segments(path: Path, manifest: dict[str, Any], *, mmap: bool = True) -> list[OpenSegment]:
    """Every segment of the collection at ``path``, open; nothing left open if one fails."""
    generation = generation_of(manifest)
    legacy_prefix = f"{GENERATION_PREFIX}{generation}" if manifest["format_version"] == 1 and generation else ""
    opened: list[OpenSegment] = []
    try:
        for entry in segments_of(manifest, legacy_prefix):
            opened.append(open_segment(path, manifest, entry, mmap=mmap))
    except BaseException:
        for segment in opened:
            segment.close()
        raise
    return opened


def open_segment(path: Path, manifest: dict[str, Any], entry: SegmentEntry, *, mmap: bool = True) -> OpenSegment:
    directory = entry.path(path)
    backend = manifest["backend"]["name"]
    try:
        index = open_index(directory, index_manifest(manifest, entry), mmap=mmap, segment=entry if manifest["format_version"] >= 2 else None)
        orphans = Orphans.load(directory, index.dim)
    except SemsearchError:
        raise
    except Exception as error:  # each library has its own error for a damaged file
        raise CollectionError(f"{path}: the {backend} index cannot be opened: {error}") from None
    deleted = read_deletions(path, entry)
    store = DocumentStore.open(directory / DOCUMENTS_FILE, schema=entry.store)
    try:
        def check() -> None:  # SQLite's own check and the row count, on the first open of these very files only
            store.quick_check()
            if manifest["format_version"] >= 2 and len(store) != entry.rows:
                raise CollectionError(f"{directory / DOCUMENTS_FILE}: holds {len(store):,} documents, the manifest says {entry.rows:,}")

        checked_once([directory / DOCUMENTS_FILE], {"check": "sqlite quick_check", "rows": entry.rows}, check)
    except BaseException:
        store.close()
        raise
    return OpenSegment(entry, directory, store, index, orphans if len(orphans) else None, deleted)


def reopen_segments(path: Path, manifest: dict[str, Any], old: list[OpenSegment], *, mmap: bool = True) -> list[OpenSegment]:
    """The segments of ``manifest`` (just written by this process), reusing what ``old`` has open: an update adds a
    segment and changes deletions, so only the new segment is opened. Stores no longer named are closed."""
    by_directory = {segment.entry.directory: segment for segment in old}
    opened: list[OpenSegment] = []
    try:
        for entry in segments_of(manifest):
            previous = by_directory.get(entry.directory)
            if previous is None:
                opened.append(open_segment(path, manifest, entry, mmap=mmap))
            elif entry.deleted == previous.entry.deleted:
                previous.entry = entry
                opened.append(previous)
            else:
                opened.append(OpenSegment(entry, previous.directory, previous.store, previous.index, previous.orphans,
                                          read_deletions(path, entry), previous._stored_vectors))
    except BaseException:
        for segment in opened:
            if segment.entry.directory not in by_directory:
                segment.close()
        raise
    kept = {segment.entry.directory for segment in opened}
    for segment in old:
        if segment.entry.directory not in kept:
            segment.close()
    return opened
