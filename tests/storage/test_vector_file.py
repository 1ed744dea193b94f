"""vectors.npy written as a stream and read back by id, as numpy itself reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch.storage.vector_file import StoredVectors, VectorFileWriter, ids_path


def test_rows_appended_in_batches_read_back_by_id(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((25, 6)).astype(np.float32)
    ids = np.arange(100, 125, dtype=np.int64)[::-1].copy()
    writer = VectorFileWriter(tmp_path / "vectors.npy", 6)
    for start in range(0, 25, 10):
        writer.append(vectors[start : start + 10], ids[start : start + 10])
    writer.close()
    assert np.load(tmp_path / "vectors.npy", allow_pickle=False).shape == (25, 6)
    assert ids_path(tmp_path / "vectors.npy") == tmp_path / "vectors.ids.npy"
    stored = StoredVectors(tmp_path / "vectors.npy")
    wanted = np.array([124, 100, 110])
    expected = vectors[[int(np.where(ids == i)[0][0]) for i in wanted]].astype(np.float16)
    np.testing.assert_array_equal(stored.vectors(wanted).astype(np.float16), expected)


def test_a_batch_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    writer = VectorFileWriter(tmp_path / "vectors.npy", 4)
    with pytest.raises(ValueError, match="4 dimensions"):
        writer.append(np.zeros((2, 5)), np.arange(2))
    with pytest.raises(ValueError, match="3 ids for 2 vectors"):
        writer.append(np.zeros((2, 4)), np.arange(3))
    writer.close()
