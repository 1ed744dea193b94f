"""``tfhub:PATH``: a TF-Hub text-embedding model in a local directory (extra ``tfhub``).

Both formats the original tutorial met load: a TF2 SavedModel (nnlm-en-dim128/2,
universal-sentence-encoder/4: the loaded object is called with a batch of strings) and a TF1 Hub
module (nnlm-en-dim128/1, with ``tfhub_module.pb``: its ``default`` signature maps the input
``default`` to the output ``default``). ``tensorflow_hub.load`` is ``tf.saved_model.load`` with
no tags for a TF1 module, so TensorFlow alone does it; the tensorflow-hub package itself no longer
imports with current setuptools (it needs ``pkg_resources``).

Nothing is downloaded: download a model from Kaggle Models / TF Hub, extract it, and pass the directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.encoders.base import Encoder, model_fingerprint, normalise
from semsearch.cpus import available_cpus
from semsearch.errors import MissingExtraError, SemsearchError

TF1_MODULE_FILE = "tfhub_module.pb"
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
# Texts handed to the model at once: bounds the memory a large model's activations take.
MAX_TEXTS_PER_CALL = 1000


def model_format(directory: Path) -> str:
    """``tf1-hub`` or ``saved-model``, or a SemsearchError saying what the directory lacks."""
    if not directory.is_dir():
        raise SemsearchError(f"tfhub: {directory}: no such directory (download and extract the model first; PATH is a local directory)")
    if not any((directory / name).is_file() for name in SAVED_MODEL_FILES):
        raise SemsearchError(f"tfhub: {directory}: not a TF-Hub model or SavedModel (no saved_model.pb)")
    return "tf1-hub" if (directory / TF1_MODULE_FILE).is_file() else "saved-model"


class TensorFlowHubEncoder(Encoder):
    """A TF-Hub text-embedding model (TF2 SavedModel or TF1 Hub module) from a local directory."""

    name = "tfhub"
    argument_help = "PATH"
    argument_required = True
    requires = ("tensorflow",)
    extra = "tfhub"
    fork_safe = False  # the runtime uses every core itself, and hangs in a forked child

    def __init__(self, argument: str | None = None, *, threads: int | None = None) -> None:
        if not argument:
            raise SemsearchError("tfhub needs a model directory: --encoder tfhub:PATH")
        directory = Path(argument).expanduser().resolve()
        self.format = model_format(directory)
        self.directory = directory
        self.argument = str(directory)  # absolute, so the collection reopens from any working directory
        self.version = model_fingerprint(directory)
        self.threads = threads or available_cpus()
        self._model: Any = None
        self._call: Any = None
        self._dim: int | None = None

    def _load(self) -> Any:
        if self._call is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            try:
                import tensorflow as tf
            except ImportError:
                raise MissingExtraError("tensorflow", "tfhub", "The tfhub encoder") from None
            try:  # only possible before TensorFlow starts its thread pools
                tf.config.threading.set_intra_op_parallelism_threads(self.threads)
                tf.config.threading.set_inter_op_parallelism_threads(self.threads)
            except RuntimeError:
                pass
            try:
                # A TF1 Hub module's graph is tagged with the empty set; a TF2 SavedModel's with "serve".
                self._model = tf.saved_model.load(str(self.directory), tags=[] if self.format == "tf1-hub" else None)
            except Exception as error:  # TensorFlow raises many kinds for a damaged or foreign model
                raise SemsearchError(f"tfhub: {self.directory}: cannot load the model: {first_line(error)}") from None
            self._call = self._text_function(tf)
        return self._call

    def _text_function(self, tf: Any) -> Any:
        """A function from a 1-D string tensor to the model's output, whichever way the model takes text."""
        model = self._model
        if self.format == "saved-model" and callable(model):
            return model
        signatures = dict(model.signatures)
        signature = signatures.get("default") or signatures.get("serving_default") or (next(iter(signatures.values())) if len(signatures) == 1 else None)
        if signature is None:
            raise SemsearchError(f"tfhub: {self.directory}: the model is not callable and has no 'default' signature (it has {sorted(signatures) or 'none'})")
        inputs = {name: spec for name, spec in signature.structured_input_signature[1].items() if spec.dtype == tf.string}
        if len(inputs) != 1:
            raise SemsearchError(f"tfhub: {self.directory}: expected one string input, the signature takes {sorted(signature.structured_input_signature[1])}")
        (input_name,) = inputs
        return lambda texts: signature(**{input_name: texts})

    def _embed(self, texts: list[str]) -> np.ndarray:
        import tensorflow as tf

        call = self._load()
        try:
            output = call(tf.constant(texts, dtype=tf.string))
        except (TypeError, ValueError, tf.errors.OpError) as error:
            raise SemsearchError(f"tfhub: {self.directory}: not a text-embedding model: it does not take a batch of strings: {first_line(error)}") from None
        if isinstance(output, dict):
            output = output.get("default", output.get("outputs")) if len(output) > 1 else next(iter(output.values()))
        vectors = np.asarray(output, dtype=np.float32) if output is not None else None
        if vectors is None or vectors.ndim != 2 or vectors.shape[0] != len(texts):
            shape = None if vectors is None else vectors.shape
            raise SemsearchError(f"tfhub: {self.directory}: not a text-embedding model: {len(texts)} texts gave output of shape {shape}")
        return vectors

    @property  # type: ignore[override]
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._embed([""]).shape[1])
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._embed(texts[start : start + MAX_TEXTS_PER_CALL]) for start in range(0, len(texts), MAX_TEXTS_PER_CALL)]
        return normalise(np.concatenate(parts))


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
