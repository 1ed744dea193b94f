"""Embed a stream of Documents in batches, with a progress bar; memory is bounded by one batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import numpy as np

from semsearch.documents import Document
from semsearch.encoders import Encoder

DEFAULT_BATCH_SIZE = 2000


def batched(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(documents)
    while batch := list(islice(iterator, size)):
        yield batch


def embed_documents(
    documents: Iterable[Document],
    encoder: Encoder,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    total: int | None = None,
    progress: bool = False,
) -> Iterator[tuple[list[Document], np.ndarray]]:
    """Yield each batch with its vectors. The bar counts texts and shows texts per second and time left."""
    from tqdm import tqdm

    with tqdm(total=total, unit=" texts", unit_scale=True, disable=not progress, dynamic_ncols=True, desc="embedding") as bar:
        for batch in batched(documents, batch_size):
            vectors = encoder.encode([document.text for document in batch])
            yield batch, vectors
            bar.update(len(batch))
