"""Parallel embedding: same vectors in the same order as the encoder alone, bounded read-ahead, clear errors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from semsearch import Collection
from semsearch.sources.corpus import read_corpus
from semsearch.documents import Document
from semsearch.encoders.parallel import ProcessEmbedder, SerialEmbedder, ThreadEmbedder, batched, make_embedder
from semsearch.encoders import Encoder
from semsearch.errors import SemsearchError
from tests.conftest import FakeEncoder

MODES = ["processes", "threads", "serial"]
EMBEDDERS = {"processes": ProcessEmbedder, "threads": ThreadEmbedder, "serial": SerialEmbedder}


class ForkSafeFakeEncoder(FakeEncoder):
    """The fake encoder is NumPy only, so it may be forked: these tests need real worker processes."""

    fork_safe = True


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return ForkSafeFakeEncoder()


def documents(count: int) -> list[Document]:
    return [Document(id=i, text=f"headline number {i} about {'rain' if i % 3 else 'markets'} in town {i % 17}") for i in range(count)]


@pytest.mark.parametrize("parallel", MODES)
def test_vectors_come_back_in_corpus_order_and_equal_the_encoders(parallel: str, fake_encoder: Encoder) -> None:
    docs = documents(1003)
    embedder = make_embedder(fake_encoder, parallel, workers=2)
    assert isinstance(embedder, EMBEDDERS[parallel])
    try:
        results = list(embedder.map(batched(docs, 100)))
    finally:
        embedder.close()
    assert [len(batch) for batch, _ in results] == [100] * 10 + [3]
    assert [d.id for batch, _ in results for d in batch] == list(range(1003))
    vectors = np.concatenate([v for _, v in results])
    np.testing.assert_array_equal(vectors, fake_encoder.encode([d.text for d in docs]))


@pytest.mark.parametrize("parallel", ["processes", "threads"])
def test_reads_ahead_by_at_most_one_batch_per_worker(parallel: str, fake_encoder: Encoder) -> None:
    pulled = 0

    def source() -> Iterator[list[Document]]:
        nonlocal pulled
        for batch in batched(documents(1000), 10):
            pulled += 1
            yield batch

    embedder = make_embedder(fake_encoder, parallel, workers=2)
    try:
        results = embedder.map(source())
        next(results)
        assert pulled <= 3
        assert sum(1 for _ in results) == 99
    finally:
        embedder.close()


class FailingEncoder(Encoder):
    name = "failing"
    dim = 8
    fork_safe = True

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if any("poison" in text for text in texts):
            raise RuntimeError("cannot embed poison")
        return np.ones((len(texts), self.dim), dtype=np.float32) / np.sqrt(self.dim)


@pytest.mark.parametrize("parallel", MODES)
def test_an_encoder_error_stops_the_run_and_says_what_it_was(parallel: str) -> None:
    docs = documents(50) + [Document(id=50, text="poison")]
    embedder = make_embedder(FailingEncoder(), parallel, workers=2)
    try:
        with pytest.raises((SemsearchError, RuntimeError), match="cannot embed poison"):
            list(embedder.map(batched(docs, 10)))
    finally:
        embedder.close()


def test_unknown_mode_is_a_clear_error(fake_encoder: Encoder) -> None:
    with pytest.raises(SemsearchError, match="unknown parallel mode 'gpu'"):
        make_embedder(fake_encoder, "gpu", workers=2)


@pytest.mark.slow
def test_real_encoder_gives_the_same_vectors_in_processes_and_threads_as_alone(real_encoder: Encoder, sample_csv) -> None:
    docs = list(read_corpus(sample_csv, limit=600))
    alone = real_encoder.encode([d.text for d in docs])
    for parallel in ("processes", "threads"):
        embedder = make_embedder(real_encoder, parallel, workers=2)
        try:
            vectors = np.concatenate([v for _, v in embedder.map(batched(docs, 128))])
        finally:
            embedder.close()
        cosines = np.sum(vectors * alone, axis=1)
        assert cosines.min() >= 0.9999, parallel


@pytest.mark.parametrize("parallel", ["processes", "threads"])
def test_a_parallel_build_equals_a_serial_build(parallel: str, fake_encoder: Encoder, sample_csv, tmp_path) -> None:
    serial = Collection.build(sample_csv, tmp_path / "serial", encoder=fake_encoder, backend="exact", limit=3000, batch_size=256, parallel="serial")
    other = Collection.build(sample_csv, tmp_path / parallel, encoder=fake_encoder, backend="exact", limit=3000, batch_size=256, parallel=parallel)
    assert len(serial) == len(other) == 3000
    ids = np.arange(3000)
    np.testing.assert_array_equal(serial.index.vectors(ids), other.index.vectors(ids))
    for query in ("fire in the bush", "election results", "cricket"):
        assert [hit.id for hit in serial.search(query, k=10)] == [hit.id for hit in other.search(query, k=10)]
