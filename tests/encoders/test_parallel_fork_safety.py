"""Forked embedding workers only for encoders that survive fork: PyTorch's thread pool hangs in a forked child."""

from __future__ import annotations

import pytest

from semsearch.encoders.parallel import ProcessEmbedder, SerialEmbedder, make_embedder
from semsearch.encoders import Encoder, RecordedEncoder


@pytest.mark.parametrize(("encoder_fixture", "embedder_class"), [("fake_encoder", SerialEmbedder), ("real_encoder", ProcessEmbedder)],
                         ids=["not-fork-safe-embeds-in-this-process", "the-default-encoder-is-forked"])
def test_only_fork_safe_encoders_are_forked(request: pytest.FixtureRequest, encoder_fixture: str, embedder_class: type) -> None:
    encoder = request.getfixturevalue(encoder_fixture)
    assert encoder.fork_safe is (embedder_class is ProcessEmbedder)
    embedder = make_embedder(encoder, "processes", 2)
    try:
        assert isinstance(embedder, embedder_class)
    finally:
        embedder.close()


def test_a_recorded_encoder_answers_for_the_encoder_it_stands_for(real_encoder: Encoder) -> None:
    recorded = RecordedEncoder(real_encoder.spec(), "test")
    assert recorded.fork_safe is True


def test_sentence_transformers_is_not_forked() -> None:
    from semsearch.encoders.sentence_transformers import SentenceTransformerEncoder

    assert SentenceTransformerEncoder.fork_safe is False
