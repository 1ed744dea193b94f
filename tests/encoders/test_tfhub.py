"""tfhub:PATH on tiny text-to-vector models that the tests build with TensorFlow on the spot,
in both formats: a TF2 SavedModel and a TF1 Hub module (with a vocabulary asset, as nnlm-en-dim128/1 has)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

tf = pytest.importorskip("tensorflow", reason="the tfhub extra is not installed (pip install 'semsearch[tfhub]')")

from semsearch import Collection  # noqa: E402
from semsearch.cli import cli  # noqa: E402
from semsearch.encoders import get_encoder  # noqa: E402
from semsearch.encoders.tfhub import TensorFlowHubEncoder  # noqa: E402
from semsearch.errors import CollectionError, SemsearchError  # noqa: E402
from tests.encoders.tiny_tf_models import DIM, save_hashed_words, word_vectors  # noqa: E402

TEXTS = ["police arrest man after robbery", "man arrested by police", "wheat prices rise", ""]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A TF2 SavedModel called with a batch of strings, and what it gives for TEXTS before saving."""
    path = tmp_path_factory.mktemp("tfhub") / "hashed-words"
    module = save_hashed_words(path)
    return path, module(tf.constant(TEXTS)).numpy()


@pytest.fixture(scope="module")
def tf1_hub_module(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A TF1 Hub module: signature 'default' from input 'default' to output 'default', words looked up in a
    vocabulary file shipped as an asset (unknown words share row 0), variables restored on load."""
    root = tmp_path_factory.mktemp("tfhub1")
    vocabulary = ["<unk>", "police", "arrest", "arrested", "man", "robbery", "wheat", "prices", "rise", "by", "after"]
    vocabulary_file = root / "tokens.txt"
    vocabulary_file.write_text("\n".join(vocabulary) + "\n")
    path = root / "vocabulary-words"
    graph = tf.Graph()
    with graph.as_default():
        texts = tf.compat.v1.placeholder(tf.string, [None], name="texts")
        asset = tf.constant(str(vocabulary_file), name="vocabulary_file")
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, asset)
        initializer = tf.lookup.TextFileInitializer(
            asset, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER
        )
        table = tf.lookup.StaticHashTable(initializer, default_value=0)
        embeddings = tf.compat.v1.get_variable("embeddings", initializer=word_vectors(len(vocabulary)))
        words = tf.strings.split(tf.strings.lower(texts))
        ids = tf.ragged.map_flat_values(table.lookup, words)
        vectors = tf.reduce_sum(tf.ragged.map_flat_values(tf.gather, embeddings, ids), axis=1)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run([tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()])
            expected = session.run(vectors, {texts: TEXTS})
            builder = tf.compat.v1.saved_model.Builder(str(path))
            signature = tf.compat.v1.saved_model.predict_signature_def({"default": texts}, {"default": vectors})
            builder.add_meta_graph_and_variables(
                session, tags=[], signature_def_map={"default": signature},
                assets_collection=tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS),
                main_op=tf.compat.v1.tables_initializer(),
            )
            builder.save()
    (path / "tfhub_module.pb").write_bytes(b"\x08\x03")  # ModuleDef{format: FORMAT_V3}, as TF-Hub writes it
    vocabulary_file.unlink()  # the module must read its own copy of the asset
    return path, expected


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


@pytest.mark.parametrize("model", ["saved_model", "tf1_hub_module"])
def test_loads_both_formats_and_gives_the_models_own_vectors(model: str, request: pytest.FixtureRequest) -> None:
    path, expected = request.getfixturevalue(model)
    encoder = get_encoder(f"tfhub:{path}")
    assert isinstance(encoder, TensorFlowHubEncoder)
    assert encoder.format == ("tf1-hub" if model == "tf1_hub_module" else "saved-model")
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (4, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, unit(expected), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()  # no words: the zero vector, not NaN
    assert encoder.spec() == {"name": "tfhub", "argument": str(path), "version": encoder.version, "dim": DIM}


def test_a_relative_path_is_recorded_absolute(saved_model: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = saved_model
    monkeypatch.chdir(path.parent)
    assert get_encoder(f"tfhub:{path.name}").argument == str(path)


def test_what_is_not_a_text_model_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SemsearchError, match="no such directory"):
        get_encoder(f"tfhub:{tmp_path / 'missing'}")
    with pytest.raises(SemsearchError, match="not a TF-Hub model or SavedModel"):
        get_encoder(f"tfhub:{tmp_path}")

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, numbers: tf.Tensor) -> tf.Tensor:
            return numbers * 2

    tf.saved_model.save(Doubler(), str(tmp_path / "doubler"))
    with pytest.raises(SemsearchError, match=r"doubler: cannot load the model|doubler: not a text-embedding model"):
        get_encoder(f"tfhub:{tmp_path / 'doubler'}").encode(["text"])

    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(SemsearchError, match="damaged: cannot load the model"):
        get_encoder(f"tfhub:{tmp_path / 'damaged'}").encode(["text"])


def test_build_and_search_with_a_tf1_hub_module(tf1_hub_module: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    module, _ = tf1_hub_module
    corpus = tmp_path / "news.txt"
    corpus.write_text("police arrest man after robbery\nwheat prices rise\nman arrested by police\n")
    path = tmp_path / "tf1.semsearch"
    built = CliRunner().invoke(cli, ["build", str(corpus), "-o", str(path), "--encoder", f"tfhub:{module}", "--backend", "exact", "-q"])
    assert built.exit_code == 0, built.output
    assert json.loads((path / "manifest.json").read_text())["encoder"]["argument"] == str(module)

    searched = CliRunner().invoke(cli, ["search", str(path), "police arrested a man", "-k", "3", "--json", "--trust-encoder"])
    assert searched.exit_code == 0, searched.output
    texts = [hit["text"] for hit in json.loads(searched.stdout)["hits"]]
    assert texts[-1] == "wheat prices rise"  # shares no word with the query

    with pytest.raises(CollectionError, match="built with encoder tfhub:"):
        Collection.open(path, encoder="use-multilingual")
