"""vectors.npy written as a stream: rows are appended as they are embedded, the shape is filled in at the end.

A plain .npy (float16, no pickle) that ``numpy.load(..., mmap_mode="r")`` opens, for backends
that do not keep full vectors themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Magic, version, header length, then a header padded to this many bytes in all: room for any shape.
HEADER_BYTES = 128


class VectorFileWriter:
    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.rows = 0
        self._stream = path.open("wb")
        self._stream.write(b"\0" * HEADER_BYTES)

    def append(self, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype="<f2")
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of {self.dim} dimensions, got shape {vectors.shape}")
        self._stream.write(np.ascontiguousarray(vectors).tobytes())
        self.rows += len(vectors)

    def close(self) -> None:
        if self._stream.closed:
            return
        header = repr({"descr": "<f2", "fortran_order": False, "shape": (self.rows, self.dim)}).encode("latin1")
        prefix = b"\x93NUMPY\x01\x00"
        padding = HEADER_BYTES - len(prefix) - 2 - len(header) - 1
        body = header + b" " * padding + b"\n"
        self._stream.seek(0)
        self._stream.write(prefix + len(body).to_bytes(2, "little") + body)
        self._stream.close()
