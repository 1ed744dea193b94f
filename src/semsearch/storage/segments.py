"""The segments a manifest names: what each holds, where its files are, and which of its documents are deleted.

A version-2 collection is a list of immutable segments, each with its own document store,
vectors and index, in ascending, disjoint ranges of keys (the internal integer a document is
known by inside semsearch: the index's label, the store's primary key). A document's own id,
an integer or a string, is a column of its segment's store. An update appends a segment and
records the keys it deletes from older ones in small deletion files; compaction merges
segments. A version-1 collection is read as one segment whose keys are its integer ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from semsearch.documents import MAX_DOCUMENT_ID
from semsearch.storage.names import DELETIONS_PREFIX, GENERATION_PREFIX, SEGMENT_PREFIX

# Segments a manifest may name: far more than the merge policy lets build up (see writing.merging).
MAX_LISTED_SEGMENTS = 1_000
ID_KINDS = ("integer", "string")
_DIRECTORY = re.compile(rf"(?:{re.escape(SEGMENT_PREFIX)}|{re.escape(GENERATION_PREFIX)})[0-9]{{1,10}}")
_NAME = re.compile(r"base|segment-[0-9]{1,10}")


@dataclass(frozen=True)
class SegmentEntry:
    """One segment as the manifest records it.

    ``directory``: "" for the files at the top of the collection (a build's), else ``segment-N``
    (or, for a version-1 collection updated before, ``generation-N``). ``rows``: the documents
    its store holds, deleted ones included. ``store``: the store's schema, 1 (the id is the key)
    or 2 (a key column and an id column). ``deleted``: the deletion file, or None.
    """

    name: str
    directory: str
    rows: int
    first_key: int
    last_key: int
    store: int = 2
    deleted: str | None = None
    deleted_count: int = 0
    # "exact" for a small segment indexed by exact search (see writing.segment_writer), None for the collection's backend.
    index: str | None = None

    @property
    def prefix(self) -> str:
        """What the manifest's file names of this segment start with."""
        return f"{self.directory}/" if self.directory else ""

    @property
    def live(self) -> int:
        return self.rows - self.deleted_count

    def path(self, collection: Path) -> Path:
        return collection / self.directory if self.directory else collection

    def holds(self, key: int) -> bool:
        return self.first_key <= key <= self.last_key

    def with_deletions(self, deleted: str | None, count: int) -> SegmentEntry:
        return replace(self, deleted=deleted, deleted_count=count)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "directory": self.directory, "rows": self.rows, "first_key": self.first_key,
                "last_key": self.last_key, "store": self.store, "deleted": self.deleted, "deleted_count": self.deleted_count,
                "index": self.index}


def segments_of(manifest: dict[str, Any], data_prefix: str = "") -> list[SegmentEntry]:
    """The segments of a checked manifest; a version-1 one is one segment of keys that are its ids."""
    if manifest["format_version"] == 1:
        directory = data_prefix.rstrip("/")
        return [SegmentEntry("base", directory, int(manifest["count"]), 0, MAX_DOCUMENT_ID, store=1)]
    return [SegmentEntry(**entry) for entry in manifest["segments"]]


def id_kind(manifest: dict[str, Any]) -> str:
    """"integer" or "string": the kind of id every document of the collection has."""
    return "integer" if manifest["format_version"] == 1 else str(manifest["ids"])


def deletions_name(generation: int, segment: SegmentEntry) -> str:
    return f"{DELETIONS_PREFIX}{generation}.{segment.name}.npy"


def segment_directory(generation: int) -> str:
    return f"{SEGMENT_PREFIX}{generation}"


def check_segments(manifest: dict[str, Any], fail: Any) -> list[SegmentEntry]:
    """The checks of a version-2 manifest's segments: each field's type and range, key ranges ascending and
    disjoint, below ``next_key``, row counts that add up to ``count``, and every file in a segment's directory.

    ``fail(field, problem)`` makes the CollectionError (see ``manifest_checks``)."""
    if manifest.get("ids") not in ID_KINDS:
        raise fail("ids", f"must be one of {', '.join(ID_KINDS)}, got {str(manifest.get('ids'))[:40]!r}")
    next_key = manifest.get("next_key")
    if type(next_key) is not int or not 0 <= next_key <= MAX_DOCUMENT_ID + 1:
        raise fail("next_key", f"must be an integer from 0 to {MAX_DOCUMENT_ID + 1:,}")
    listed = manifest.get("segments")
    if not isinstance(listed, list) or not 1 <= len(listed) <= MAX_LISTED_SEGMENTS:
        raise fail("segments", f"must be a list of 1 to {MAX_LISTED_SEGMENTS:,} segments")
    segments: list[SegmentEntry] = []
    names: set[str] = set()
    directories: set[str] = set()
    previous_last = -1
    for position, entry in enumerate(listed):
        field = f"segments[{position}]"
        segment = _segment(entry, field, fail)
        if segment.name in names or (segment.directory in directories):
            raise fail(field, "repeats the name or the directory of another segment")
        names.add(segment.name)
        directories.add(segment.directory)
        if segment.rows and (segment.first_key <= previous_last or segment.last_key >= next_key):
            raise fail(field, "has keys that overlap another segment's or reach next_key")
        if segment.rows:
            previous_last = segment.last_key
        if segment.deleted is not None and segment.deleted not in manifest["files"]:
            raise fail(field, f"names a deletion file the manifest does not list: {segment.deleted[:60]!r}")
        segments.append(segment)
    if sum(segment.live for segment in segments) != manifest["count"]:
        raise fail("count", "is not the segments' documents less their deletions")
    for name in manifest["files"]:
        directory = name.split("/", 1)[0] if "/" in name else ""
        if directory and directory not in directories:
            raise fail("files", f"name a file outside every segment: {name[:60]!r}")
    return segments


def _segment(entry: Any, field: str, fail: Any) -> SegmentEntry:
    if not isinstance(entry, dict) or set(entry) != {"name", "directory", "rows", "first_key", "last_key", "store", "deleted",
                                                     "deleted_count", "index"}:
        raise fail(field, "must be an object of name, directory, rows, first_key, last_key, store, deleted, deleted_count, index")
    if entry["index"] not in (None, "exact"):
        raise fail(f"{field}.index", "must be null (the collection's backend) or 'exact'")
    for key in ("rows", "first_key", "last_key", "deleted_count"):
        if type(entry[key]) is not int or not 0 <= entry[key] <= MAX_DOCUMENT_ID:
            raise fail(f"{field}.{key}", f"must be an integer from 0 to {MAX_DOCUMENT_ID:,}")
    if not isinstance(entry["name"], str) or not _NAME.fullmatch(entry["name"]):
        raise fail(f"{field}.name", "must be 'base' or segment-N")
    directory = entry["directory"]
    if not isinstance(directory, str) or (directory and not _DIRECTORY.fullmatch(directory)):
        raise fail(f"{field}.directory", "must be '' (the top of the collection), segment-N or generation-N")
    if entry["store"] not in (1, 2) or type(entry["store"]) is not int:
        raise fail(f"{field}.store", "must be 1 or 2")
    deleted = entry["deleted"]
    if deleted is not None and (not isinstance(deleted, str) or "/" in deleted or not deleted.startswith(DELETIONS_PREFIX)):
        raise fail(f"{field}.deleted", f"must be null or a {DELETIONS_PREFIX}*.npy file at the top of the collection")
    if entry["rows"] and entry["first_key"] > entry["last_key"]:
        raise fail(field, "has first_key after last_key")
    if entry["deleted_count"] > entry["rows"] or (entry["deleted_count"] > 0) != (deleted is not None):
        raise fail(f"{field}.deleted_count", "must be at most rows, and above 0 exactly when there is a deletion file")
    return SegmentEntry(**entry)


def index_manifest(manifest: dict[str, Any], segment: SegmentEntry) -> dict[str, Any]:
    """The manifest's entries a segment's index is opened by: the collection's backend and reducer, or exact search."""
    if segment.index == "exact":
        return {**manifest, "backend": {"name": "exact", "params": {}}, "reducer": None}
    return manifest
