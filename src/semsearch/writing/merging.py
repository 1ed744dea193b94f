"""Merging segments: the merge policy that keeps their number bounded, and compaction, which merges them all.

Each update adds a segment, so without merging a collection kept up to date by small updates
would end as thousands of them, each searched in turn (LanceDB users with tens of thousands
of fragments; lancedb#2362 recommends fewer than 100). The policy here, run after every
update while the update lock is held, is Lucene's idea in its simplest form: when there are
more than ``MAX_SEGMENTS``, the ``MERGE_FACTOR`` adjacent segments with the fewest documents
between them are merged into one. Small segments merge with small ones, so a merge costs about
what the recent updates added, and the large segment a build wrote is merged only by
``compact``, which rewrites everything (and drops every deleted row) as one segment.

A merge writes a new segment from the live rows of the ones it replaces, keeping their keys
(so their ranges stay disjoint: only adjacent segments merge), with an index built from their
stored vectors, then switches the manifest as an update does: a reader sees the old segments
or the new one, and a crash leaves the old ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semsearch.search.segment_view import OpenSegment
from semsearch.storage.atomic import fsync_directory
from semsearch.storage.layout import describe_files, generation_of, next_manifest, remove_unreferenced, write_manifest
from semsearch.storage.segments import id_kind, segment_directory
from semsearch.writing.segment_writer import SegmentWriter
from semsearch.writing.update import in_segment, next_key

# Segments a collection keeps before the policy merges some; search time grows with their number.
MAX_SEGMENTS = 10
# Segments merged at once: fewer merges than merging pairs, each of segments of like size.
MERGE_FACTOR = 5


def due_merge(segments: list[OpenSegment]) -> tuple[int, int] | None:
    """The run [start, stop) of adjacent segments the policy merges now, or None when there are few enough."""
    if len(segments) <= MAX_SEGMENTS:
        return None
    width = min(MERGE_FACTOR, len(segments))
    sizes = [segment.entry.rows for segment in segments]
    start = min(range(len(segments) - width + 1), key=lambda first: sum(sizes[first : first + width]))
    return start, start + width


def merge_segments(path: Path, manifest: dict[str, Any], segments: list[OpenSegment], start: int, stop: int) -> dict[str, Any]:
    """Replace ``segments[start:stop]`` by one segment of their live documents; the manifest switched to.

    The caller holds the update lock and hands over the collection's current manifest and open segments.
    """
    remove_unreferenced(path, manifest)
    following = next_key(manifest, segments)
    generation = generation_of(manifest) + 1
    directory = segment_directory(generation)
    merged = segments[start:stop]
    writer = SegmentWriter(path / directory, merged[0].index, int(manifest["encoder"]["dim"]))
    try:
        for segment in merged:
            writer.copy(segment.store, segment.deleted, segment.matching_keys(None), segment.vectors)
        entry, names = writer.finish(directory, directory)
        files = {name: value for name, value in manifest["files"].items()
                 if not any(in_segment(name, segment.entry) for segment in merged)}
        files.update(describe_files(path, [f"{directory}/{name}" for name in names]))
        entries = [segment.entry for segment in segments[:start]] + [entry] + [segment.entry for segment in segments[stop:]]
        updated = next_manifest(manifest, generation=generation, files=files, segments=entries, next_key=following, ids=id_kind(manifest))
        write_manifest(path, updated)
    except BaseException:
        writer.discard()
        raise
    try:
        fsync_directory(path)
        remove_unreferenced(path, updated)
    except OSError:
        pass
    return updated
