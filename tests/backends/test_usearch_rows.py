"""usearch's vectors read from the mapped file by key (``MappedRows``), and the exact scan over float16 rows
(``best_rows``): both must give what usearch's own ``get`` and NumPy's float32 product give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch.backends import backend_class, create_index
from semsearch.backends.exact import best_rows, top_k


def unit_rows(count: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", ["f16", "f32", "bf16"])
def test_mapped_rows_are_what_usearch_hands_back(tmp_path: Path, dtype: str) -> None:
    vectors = unit_rows(3_000, 24, seed=1)
    # Keys out of order and with gaps, and some removed: the file's slots are not the keys.
    keys = np.random.default_rng(2).permutation(np.arange(0, 9_000, 3))
    index = create_index("usearch", 24, {"dtype": dtype})
    index.add(keys, vectors)
    index.remove(keys[:50])
    index.save(tmp_path)
    viewed = backend_class("usearch").load(tmp_path, 24, index.params, mmap=True)
    loaded = backend_class("usearch").load(tmp_path, 24, index.params, mmap=False)  # usearch's own get: not mapped
    wanted = keys[50:][np.random.default_rng(3).permutation(len(keys) - 50)[:700]]
    assert np.array_equal(viewed.vectors(wanted), loaded.vectors(wanted))
    assert viewed.vectors(wanted).dtype == np.float32
    stored = viewed.stored_rows(wanted)
    assert stored.dtype == {"f16": np.float16, "f32": np.float32, "bf16": np.float32}[dtype]
    assert np.array_equal(stored.astype(np.float32), loaded.vectors(wanted))
    with pytest.raises(ValueError, match=f"no vector for document {int(keys[0])}"):
        viewed.vectors(np.array([keys[60], keys[0]]))  # removed
    with pytest.raises(ValueError, match="no vector for document 1"):
        viewed.vectors(np.array([1]))  # never added


@pytest.mark.parametrize("count", [1, 7, 40, 5_000])
def test_best_rows_on_float16_is_the_exact_top_k(count: int) -> None:
    rows = unit_rows(count, 64, seed=count).astype(np.float16)
    queries = unit_rows(5, 64, seed=99)
    positions, scores = best_rows(queries, rows, 10)
    expected_positions, expected_scores = top_k(queries @ rows.astype(np.float32).T, 10)
    assert positions.shape == scores.shape == (5, 10)
    np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-6)
    found = expected_positions != -1
    assert np.array_equal(positions != -1, found)
    # Ties aside, the same rows: each position's exact score is the score reported for it.
    exact = np.take_along_axis(queries @ rows.astype(np.float32).T, np.maximum(positions, 0), axis=1)
    np.testing.assert_allclose(exact[found], scores[found], rtol=0, atol=1e-6)
