"""vectors.npy written as a stream: rows are appended as they are embedded, the shape is filled in at the end.

A plain .npy (float16, no pickle) that ``numpy.load(..., mmap_mode="r")`` opens, for backends
that do not keep full vectors themselves. Row i holds the vector of the document whose id is
row i of ``vectors.ids.npy`` (int64), written beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semsearch.errors import CollectionError

# Magic, version, header length, then a header padded to this many bytes in all: room for any shape.
HEADER_BYTES = 128


def ids_path(path: Path) -> Path:
    """``vectors.npy`` -> ``vectors.ids.npy``: the document id of each row."""
    return path.with_name(f"{path.stem}.ids.npy")


class VectorFileWriter:
    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.rows = 0
        self._ids: list[np.ndarray] = []
        self._stream = path.open("wb")
        self._stream.write(b"\0" * HEADER_BYTES)

    def append(self, vectors: np.ndarray, ids: np.ndarray | None = None) -> None:
        vectors = np.asarray(vectors, dtype="<f2")
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected vectors of {self.dim} dimensions, got shape {vectors.shape}")
        if ids is not None:
            if len(ids) != len(vectors):
                raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
            self._ids.append(np.asarray(ids, dtype=np.int64))
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
        if self._ids or self.rows == 0:
            ids = np.concatenate(self._ids) if self._ids else np.zeros(0, dtype=np.int64)
            if len(ids) != self.rows:
                raise ValueError(f"{len(ids)} ids for {self.rows} rows: pass ids with every append or with none")
            with ids_path(self.path).open("wb") as stream:
                np.save(stream, ids, allow_pickle=False)


class StoredVectors:
    """A vectors.npy and its ids, memory-mapped: the full vectors of given documents, for exact scoring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.matrix = np.load(path, mmap_mode="r", allow_pickle=False)
        ids_file = ids_path(path)
        if not ids_file.is_file():
            raise ValueError(f"{path}: no {ids_file.name} beside it, so its rows cannot be matched to documents")
        self.ids = np.load(ids_file, allow_pickle=False)
        self._order = np.argsort(self.ids, kind="stable")
        self._sorted_ids = self.ids[self._order]  # sorted once: a lookup per search must not sort

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of ``ids``; every id must be present."""
        ids = np.asarray(ids, dtype=np.int64)
        sorted_ids = self._sorted_ids
        where = np.searchsorted(sorted_ids, ids)
        where = np.minimum(where, len(sorted_ids) - 1)
        if len(ids) and (len(sorted_ids) == 0 or not np.array_equal(sorted_ids[where], ids)):
            missing = ids[(len(sorted_ids) == 0) | (sorted_ids[where] != ids)] if len(sorted_ids) else ids
            raise CollectionError(f"{self.path}: no stored vector for document {int(missing[0])}; the collection is damaged")
        return self._order[where]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[self.rows_of(ids)], dtype=np.float32)
