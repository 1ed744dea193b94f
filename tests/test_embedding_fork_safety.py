"""Forked embedding workers only for encoders that survive fork: PyTorch's thread pool hangs in a forked child."""

from __future__ import annotations

from semsearch.embedding import ProcessEmbedder, SerialEmbedder, make_embedder
from semsearch.encoders import Encoder, RecordedEncoder
from tests.conftest import FakeEncoder


def test_encoders_that_are_not_fork_safe_embed_in_this_process(fake_encoder: FakeEncoder) -> None:
    assert not fake_encoder.fork_safe
    embedder = make_embedder(fake_encoder, "processes", 2)
    try:
        assert isinstance(embedder, SerialEmbedder)
    finally:
        embedder.close()


def test_the_default_encoder_is_forked(real_encoder: Encoder) -> None:
    embedder = make_embedder(real_encoder, "processes", 2)
    try:
        assert isinstance(embedder, ProcessEmbedder)
    finally:
        embedder.close()


def test_a_recorded_encoder_answers_for_the_encoder_it_stands_for(real_encoder: Encoder) -> None:
    recorded = RecordedEncoder(real_encoder.spec(), "test")
    assert recorded.fork_safe is True


def test_sentence_transformers_is_not_forked() -> None:
    from semsearch.encoders.sentence_transformers import SentenceTransformerEncoder

    assert SentenceTransformerEncoder.fork_safe is False
