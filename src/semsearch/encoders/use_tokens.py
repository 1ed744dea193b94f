"""USE's tokenizer with a memory of the words it has already cut into pieces.

The package's tokenizer is pure Python (a port of sentencepiece's unigram Viterbi) and costs
about a tenth of an encode. Headlines reuse a small vocabulary, and the model's pieces never
hold a word boundary except at their start (checked when the cache is made), so a text's
pieces are the concatenation of its words' pieces: each distinct word is cut once.

Only texts that are printable ASCII words separated by single spaces take the cached path, where
that equivalence is certain; any other text goes through the package's tokenizer whole.
"""

from __future__ import annotations

from typing import Any

WORD_BOUNDARY = "\u2581"  # sentencepiece's escaped space, which starts every word's first piece
# Words remembered before the memory starts over: a corpus's vocabulary fits, and memory stays bounded.
MAX_CACHED_WORDS = 200_000


class CachedTokenizer:
    """Piece ids of a text, with the begin and end markers, as the package's tokenizer gives them."""

    def __init__(self, tokenizer: Any) -> None:
        pieces = tokenizer._pieces
        if any(WORD_BOUNDARY in piece[1:] for piece in pieces):
            raise ValueError("this sentencepiece model has pieces that span words; word caching would change its output")
        self._tokenizer = tokenizer
        self._begin = tokenizer._bos_id
        self._end = tokenizer._eos_id
        self._words: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        if not _plain_words(text):
            return self._tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True)
        words = self._words
        if len(words) > MAX_CACHED_WORDS:
            words.clear()
        ids = [self._begin]
        for word in text.split(" "):
            pieces = words.get(word)
            if pieces is None:
                pieces = words[word] = self._tokenizer.encode(word, out_type=int, add_bos=False, add_eos=False)
            ids += pieces
        ids.append(self._end)
        return ids


def _plain_words(text: str) -> bool:
    """Printable ASCII words joined by single spaces: no control characters, tabs, or leading, trailing or doubled spaces."""
    return bool(text) and text.isascii() and text.isprintable() and text[0] != " " and text[-1] != " " and "  " not in text
