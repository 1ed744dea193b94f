"""Shared fixtures: the real sample data, a small deterministic fake encoder, and real-encoder collections."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from semsearch.encoders import Encoder, normalise

SHARED_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SAMPLE_CSV = Path(__file__).resolve().parents[1] / "src" / "semsearch" / "data" / "abcnews-sample.csv.gz"
RAW_TSV = SHARED_DATA / "abcnews-raw.sample.tsv"


class FakeEncoder(Encoder):
    """Hashed bag of words: texts sharing words are near. Deterministic, instant, for tests of other parts."""

    name = "fake-hash"
    version = "1"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                vectors[row, int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] & 1 else -1.0
        return normalise(vectors)


@pytest.fixture(scope="session", autouse=True)
def verified_files_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tests (and the servers and builds they start) remember checked files here, never in ~/.cache."""
    import os

    directory = tmp_path_factory.mktemp("verified-cache")
    os.environ["SEMSEARCH_CACHE_DIR"] = str(directory)
    return directory


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def real_encoder() -> Encoder:
    from semsearch.encoders import get_encoder

    return get_encoder("use-multilingual")


@pytest.fixture(scope="session")
def sample_csv() -> Path:
    """The bundled 21,293 real ABC headlines (gzipped CSV, publish_date,headline_text)."""
    return SAMPLE_CSV


@pytest.fixture(scope="session")
def raw_tsv() -> Path:
    """2,000 real headlines in the Dataverse raw.tsv layout, headlines in double quotes."""
    return RAW_TSV


@pytest.fixture(scope="session")
def small_real_collection(tmp_path_factory: pytest.TempPathFactory, real_encoder: Encoder):
    """3,000 real headlines with the real encoder and the default backend, built once per test run."""
    from semsearch import Collection

    path = tmp_path_factory.mktemp("collections") / "small.semsearch"
    collection = Collection.build(SAMPLE_CSV, path, encoder=real_encoder, limit=3000)
    yield collection
    collection.close()
