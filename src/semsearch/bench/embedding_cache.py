"""A corpus embedded once and cached as float16 ``.npy`` files, then read back in bounded chunks."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semsearch.encoders import Encoder
from semsearch.encoders.parallel import embed_documents
from semsearch.sources.corpus import read_corpus
from semsearch.storage.vector_file import VectorFileWriter

# Rows read, converted to float32 and added at once: bounds the benchmark's own memory.

CHUNK_ROWS = 50_000


@dataclass
class Embeddings:
    """A corpus's vectors (float16 .npy, row i for document ids[i]) and the ids."""

    vectors_path: Path
    ids: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return np.load(self.vectors_path, mmap_mode="r", allow_pickle=False).shape

def cache_name(corpus_path: Path, encoder: Encoder, limit: int | None) -> str:
    """A file stem that changes when the corpus file, the encoder or the limit does."""
    stat = corpus_path.stat()
    key = f"{corpus_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{encoder.name}|{encoder.version}|{encoder.dim}|{limit}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{corpus_path.name.split('.')[0]}.{encoder.name}.{digest}"

def cached_embeddings(corpus_path: Path, encoder: Encoder, cache_dir: Path, *, limit: int | None = None,
                      progress: bool = False) -> Embeddings:
    """The corpus's embeddings, computed once into ``cache_dir`` and read from there after.

    Written under temporary names and renamed when complete, so an interrupted run leaves no
    half-written cache behind to be mistaken for a whole one.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = cache_name(corpus_path, encoder, limit)
    vectors_path = cache_dir / f"{stem}.f16.npy"
    ids_path = cache_dir / f"{stem}.ids.npy"
    if not (vectors_path.is_file() and ids_path.is_file()):
        corpus = read_corpus(corpus_path, limit=limit)
        partial_vectors = cache_dir / f".{stem}.f16.npy.{os.getpid()}.tmp"
        writer = VectorFileWriter(partial_vectors, encoder.dim)
        ids: list[int] = []
        try:
            total = corpus.count_rows() if progress else None
            for batch, vectors in embed_documents(corpus, encoder, total=total, progress=progress):
                writer.append(vectors)
                ids.extend(document.id for document in batch)
            writer.close()
            partial_ids = cache_dir / f".{stem}.ids.npy.{os.getpid()}.tmp"
            with partial_ids.open("wb") as stream:
                np.save(stream, np.asarray(ids, dtype=np.int64), allow_pickle=False)
            os.replace(partial_ids, ids_path)
            os.replace(partial_vectors, vectors_path)
        finally:
            writer.close()
            partial_vectors.unlink(missing_ok=True)
    return Embeddings(vectors_path, np.load(ids_path, allow_pickle=False))

def read_rows(path: Path, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a float16 .npy as float32, read with plain file reads.

    Not memory-mapped on purpose: mapped pages would count in the process's resident memory,
    and the benchmark reports each index's peak memory, not the input's.
    """
    with path.open("rb") as stream:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
        stream.seek(stream.tell() + start * shape[1] * dtype.itemsize)
        count = max(0, min(stop, shape[0]) - start)
        data = np.frombuffer(stream.read(count * shape[1] * dtype.itemsize), dtype=dtype)
    return data.reshape(count, shape[1]).astype(np.float32)

def chunks(path: Path, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, rows, CHUNK_ROWS):
        yield start, read_rows(path, start, start + CHUNK_ROWS)
