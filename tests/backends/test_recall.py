"""The default backend against exact search on the real sample: recall@10 must be at least 0.95."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semsearch.backends import create_index
from semsearch.sources.corpus import read_corpus
from semsearch.encoders import Encoder
from semsearch.bench.evaluate import recall_at_k


@pytest.mark.slow
def test_default_backend_recall_at_10_on_the_real_sample(sample_csv: Path, real_encoder: Encoder) -> None:
    texts = [document.text for document in read_corpus(sample_csv)]
    vectors = real_encoder.encode(texts)
    ids = np.arange(len(texts), dtype=np.int64)
    rng = np.random.default_rng(0)
    queries = vectors[rng.choice(len(texts), 500, replace=False)]

    exact = create_index("exact", vectors.shape[1])
    exact.add(ids, vectors)
    default = create_index("usearch", vectors.shape[1])
    default.add(ids, vectors)

    truth, _ = exact.search(queries, 10)
    found, _ = default.search(queries, 10)
    recall = recall_at_k(found, truth, 10)
    assert recall >= 0.95, f"recall@10 {recall:.3f}"
    # The metric itself can fail: random ids have next to no recall.
    assert recall_at_k(rng.integers(0, len(texts), found.shape), truth, 10) < 0.05
