"""Deletion records: the keys removed from an immutable segment, one small .npy per segment and generation.

A removal writes, for each segment it touches, a new file holding every key deleted from that
segment so far (its size is the deletions', never the segment's), and the new manifest names
it; the old file goes when nothing names it. Read back, the file is checked against what the
manifest says of its segment before a key of it is trusted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from semsearch.errors import CollectionError
from semsearch.storage.segments import SegmentEntry


def read_deletions(collection: Path, segment: SegmentEntry) -> np.ndarray:
    """The deleted keys of ``segment``, ascending, distinct and inside its key range; an empty array without a file."""
    if segment.deleted is None:
        return np.zeros(0, dtype=np.int64)
    path = collection / segment.deleted
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # mapped: a header claiming more rows than the file fails here
    except Exception as error:  # numpy parses the header itself: a crafted one raises ValueError, SyntaxError, TokenError...
        raise CollectionError(f"{path}: not a deletion record: {' '.join(str(error).split())[:120]}") from None
    if mapped.dtype != np.dtype("<i8") or mapped.shape != (segment.deleted_count,):
        raise CollectionError(f"{path}: a deletion record of {mapped.dtype} {mapped.shape}, "
                              f"the manifest says {segment.deleted_count:,} keys of int64")
    keys = np.array(mapped, dtype=np.int64)
    del mapped
    if len(keys) and (keys[0] < segment.first_key or keys[-1] > segment.last_key or np.any(np.diff(keys) <= 0)):
        raise CollectionError(f"{path}: a deletion record whose keys are not distinct, ascending keys of segment {segment.name}")
    return keys


def write_deletions(collection: Path, name: str, keys: np.ndarray) -> None:
    """Write ``keys`` (sorted, distinct) as ``name`` at the top of the collection, durably, never through a planted link."""
    path = collection / name
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "wb") as stream:
        np.save(stream, np.asarray(keys, dtype="<i8"), allow_pickle=False)
        stream.flush()
        os.fsync(stream.fileno())
