"""A tiny TF2 text-embedding SavedModel, made on the spot for the tfhub and TFRecord tests.

Import only after ``pytest.importorskip("tensorflow")``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

DIM = 16
BUCKETS = 512


def word_vectors(rows: int) -> np.ndarray:
    return np.random.default_rng(7).normal(size=(rows, DIM)).astype(np.float32)


class HashedWords(tf.Module):
    """Sum of one random vector per hashed lower-case word: texts sharing words are near."""

    def __init__(self) -> None:
        super().__init__()
        self.table = tf.Variable(word_vectors(BUCKETS))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        words = tf.strings.split(tf.strings.lower(texts))
        ids = tf.ragged.map_flat_values(tf.strings.to_hash_bucket_fast, words, BUCKETS)
        return tf.reduce_sum(tf.ragged.map_flat_values(tf.gather, self.table, ids), axis=1)


def save_hashed_words(path: Path) -> HashedWords:
    """Saves the model as a TF2 SavedModel at ``path`` and returns it, to compute expected vectors with."""
    module = HashedWords()
    tf.saved_model.save(module, str(path))
    return module
