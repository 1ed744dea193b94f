"""The one thing an encoder must do: turn texts into L2-normalised float32 vectors."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class Encoder(ABC):
    """A text encoder. Subclasses set ``name``, ``version`` and ``dim`` and implement ``encode``.

    Loading a model is slow, so implementations load it lazily on the first ``encode``
    and keep it for the life of the object.

    The registry (``semsearch encoders``) reads the class attributes below without
    instantiating anything: ``dim`` stays unset at class level when it depends on the model.
    """

    name: str
    version: str = "1"
    dim: int
    # The part after the colon in NAME:ARGUMENT, e.g. a model path; recorded in the manifest.
    argument: str | None = None
    # What the argument is ("PATH"), for help texts; None when the encoder takes no argument.
    argument_help: str | None = None
    argument_required: bool = False
    # Modules the encoder imports, and the semsearch extra that installs them.
    requires: tuple[str, ...] = ()
    extra: str | None = None
    # True when a loaded encoder may be copied into forked worker processes. PyTorch and TensorFlow
    # keep thread pools that hang in a forked child, so only NumPy-only encoders say True.
    fork_safe: bool = False

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of shape (len(texts), dim), float32, each row of unit length."""

    def with_threads(self, threads: int) -> Encoder:
        """This encoder limited to ``threads`` threads for its math.

        Parallel embedding runs one worker per core and gives each one thread; an encoder
        that spreads one call over several threads overrides this. The default changes nothing.
        """
        return self

    def spec(self) -> dict[str, Any]:
        """What a collection's manifest records, and what opening it checks."""
        return {"name": self.name, "argument": self.argument, "version": self.version, "dim": self.dim}


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return vectors / norms


def model_fingerprint(directory: Path) -> str:
    """A short digest of the model's file names and sizes: the same model installed anywhere gives the same one.

    Sizes rather than contents keep opening fast (no hashing of 100 MB of weights); a retrained
    model of the same shape is the case it misses, and the manifest's argument names the model too.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{path.relative_to(directory).as_posix()}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]
