"""What makes a build resumable: the vector checkpoint, the index snapshots and the locked workspace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch.backends import create_index
from semsearch.errors import CollectionError
from semsearch.writing.checkpoint import PLAN_FILE, BuildWorkspace, IndexSnapshots, VectorCheckpoint, workspace_path


def test_records_survive_reopening_and_truncate_to_the_committed_count(tmp_path: Path) -> None:
    vectors = np.arange(30, dtype=np.float32).reshape(10, 3)
    checkpoint = VectorCheckpoint(tmp_path / "checkpoint.vectors", 3)
    checkpoint.append(np.arange(5), vectors[:5])
    checkpoint.append(np.arange(5, 10), vectors[5:])
    checkpoint.close()
    reopened = VectorCheckpoint(tmp_path / "checkpoint.vectors", 3)
    assert reopened.rows == 10
    ids, read = reopened.read(2, 7)
    assert ids.tolist() == [2, 3, 4, 5, 6]
    np.testing.assert_array_equal(read, vectors[2:7])
    assert [(stop, len(ids)) for stop, ids, _ in reopened.slices(0, 4)] == [(4, 4), (8, 4), (10, 2)]
    reopened.truncate(6)
    assert reopened.rows == 6 and reopened.read(0, 100)[0].tolist() == list(range(6))
    with pytest.raises(CollectionError, match="holds 6 vectors for 8 stored documents"):
        reopened.truncate(8)
    reopened.close()


def test_the_newest_whole_snapshot_is_restored(tmp_path: Path) -> None:
    index = create_index("exact", 3)
    index.add(np.arange(4), np.eye(4, 3, dtype=np.float32) + 0.1)
    snapshots = IndexSnapshots(tmp_path, index, every_seconds=0.0)
    assert snapshots.due()
    snapshots.save(index, rows=4)
    restored, rows = IndexSnapshots(tmp_path, create_index("exact", 3), 0.0).restore(create_index("exact", 3), committed=10)
    assert rows == 4 and len(restored) == 4
    _, rows = IndexSnapshots(tmp_path, create_index("exact", 3), 0.0).restore(create_index("exact", 3), committed=3)
    assert rows == 0  # a snapshot past the committed documents is never used


def test_a_second_build_of_the_same_target_is_refused_and_a_resume_must_match(tmp_path: Path) -> None:
    target = tmp_path / "news.semsearch"
    first = BuildWorkspace(target, {"source": "a.csv"}).open(resume=False)
    assert first.path == workspace_path(target) and (first.path / PLAN_FILE).is_file()
    first.release()
    with pytest.raises(CollectionError, match="differs in source"):
        BuildWorkspace(target, {"source": "b.csv"}).open(resume=True)
    resumed = BuildWorkspace(target, {"source": "a.csv"}).open(resume=True)
    assert resumed.resumed
    resumed.discard()
    assert not workspace_path(target).exists()
