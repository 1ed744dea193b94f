"""The default encoder, for real: shape, normalisation, threads, and a Spanish query near its English twin."""

from __future__ import annotations

import os

import numpy as np

from semsearch.encoders import Encoder, get_encoder
from semsearch.encoders.use import UniversalSentenceEncoder


def test_vectors_are_unit_float32_rows(real_encoder: Encoder) -> None:
    vectors = real_encoder.encode(["storm damages homes", "cricket team wins", "x"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert real_encoder.encode([]).shape == (0, 512)


def test_same_meaning_across_languages_is_near(real_encoder: Encoder) -> None:
    english, spanish, unrelated = real_encoder.encode(["the fire destroyed many houses", "el incendio destruyó muchas casas", "stock markets rise on bank profits"])
    assert float(english @ spanish) > float(english @ unrelated) + 0.2


def test_batches_give_the_same_vectors_as_one_call(real_encoder: Encoder) -> None:
    texts = [f"headline number {i} about rain" for i in range(2500)]  # crosses the 2,000-text slice
    whole = real_encoder.encode(texts)
    np.testing.assert_allclose(whole[2100], real_encoder.encode([texts[2100]])[0], atol=1e-5)


def test_threads_follow_the_cpus_this_process_may_use() -> None:
    encoder = UniversalSentenceEncoder()
    assert encoder.threads == len(os.sched_getaffinity(0))
    assert encoder.spec()["name"] == "use-multilingual" and encoder.spec()["dim"] == 512


def test_registry_finds_the_default() -> None:
    assert isinstance(get_encoder("use-multilingual"), UniversalSentenceEncoder)
