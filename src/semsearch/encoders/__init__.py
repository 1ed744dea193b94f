"""Encoders by name. Other packages add theirs through the ``semsearch.encoders`` entry-point group.

An encoder is chosen with a spec, ``NAME`` or ``NAME:ARGUMENT`` (``tfhub:/models/nnlm``,
``sentence-transformers:all-MiniLM-L6-v2``). A collection's manifest records the name and the
argument, so opening it builds the same encoder again.

A plugin registers a class (or any callable taking the argument, or None, and returning an
``Encoder``) under a name::

    [project.entry-points."semsearch.encoders"]
    my-encoder = "my_package.encoder:MyEncoder"
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import numpy as np

from semsearch.encoders.base import Encoder, normalise
from semsearch.errors import CollectionError, SemsearchError

DEFAULT_ENCODER = "use-multilingual"
GROUP = "semsearch.encoders"

__all__ = [
    "DEFAULT_ENCODER",
    "Encoder",
    "EncoderInfo",
    "RecordedEncoder",
    "check_trusted",
    "encoder_for_manifest",
    "encoder_names",
    "format_spec",
    "get_encoder",
    "list_encoders",
    "normalise",
    "parse_spec",
    "resolve_encoder",
]


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``NAME[:ARGUMENT]`` as (name, argument or None). Only the first colon splits."""
    name, _, argument = spec.strip().partition(":")
    if not name:
        raise SemsearchError(f"encoder {spec!r}: expected NAME or NAME:ARGUMENT, e.g. sentence-transformers:all-MiniLM-L6-v2")
    return name, argument or None


def format_spec(name: str, argument: str | None) -> str:
    return f"{name}:{argument}" if argument else name


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=GROUP):
        found.setdefault(entry.name, entry)
    return found


def encoder_names() -> list[str]:
    return sorted(_entry_points())


def get_encoder(spec: str = DEFAULT_ENCODER, argument: str | None = None) -> Encoder:
    """An encoder from ``NAME`` or ``NAME:ARGUMENT`` (a model path, say), or from a name and an argument."""
    name, parsed_argument = parse_spec(spec)
    argument = argument if argument is not None else parsed_argument
    entry = _entry_points().get(name)
    if entry is None:
        raise SemsearchError(f"no encoder named {name!r}; installed: {', '.join(encoder_names())} (see `semsearch encoders`)")
    factory = entry.load()
    if isinstance(factory, type) and issubclass(factory, Encoder):
        if argument and not factory.argument_help:
            raise SemsearchError(f"encoder {name!r} takes no argument, got {argument!r}")
        if not argument and factory.argument_required:
            raise SemsearchError(f"encoder {name!r} needs an argument: --encoder {name}:{factory.argument_help}")
    encoder = factory(argument)
    if not isinstance(encoder, Encoder):
        raise SemsearchError(f"encoder {name!r} ({entry.value}) did not make a semsearch Encoder")
    return encoder


@dataclass(frozen=True)
class EncoderInfo:
    """One row of ``semsearch encoders``."""

    name: str
    dim: int | None  # None: depends on the model the argument names
    installed: bool
    argument: str | None  # what the argument is, e.g. "PATH"; None when the encoder takes none
    extra: str | None  # the semsearch extra that installs what it needs
    summary: str
    problem: str | None = None  # why it is not installed, or why its plugin failed to load

    @property
    def usage(self) -> str:
        return format_spec(self.name, self.argument)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def list_encoders() -> list[EncoderInfo]:
    """Every registered encoder, installed or not, without loading any model or heavy library.

    An encoder class may declare ``requires`` (importable module names), ``extra``,
    ``argument_help`` and a class-level ``dim``; a plugin that does not is shown as installed
    when it imports.
    """
    rows = []
    for name, entry in sorted(_entry_points().items()):
        try:
            factory: Any = entry.load()
        except Exception as error:  # a broken third-party plugin must not break the listing
            rows.append(EncoderInfo(name, None, False, None, None, f"from {entry.value}", problem=f"cannot load: {error}"))
            continue
        missing = [module for module in getattr(factory, "requires", ()) if importlib.util.find_spec(module) is None]
        dim = getattr(factory, "dim", None)
        extra = getattr(factory, "extra", None)
        rows.append(
            EncoderInfo(
                name=name,
                dim=dim if isinstance(dim, int) else None,
                installed=not missing,
                argument=getattr(factory, "argument_help", None),
                extra=extra,
                summary=_first_line(factory.__doc__),
                problem=f"needs {', '.join(missing)}: pip install 'semsearch[{extra}]'" if missing and extra else
                (f"needs {', '.join(missing)}" if missing else None),
            )
        )
    return rows


class RecordedEncoder(Encoder):
    """The encoder a collection's manifest names, checked against the manifest on first use.

    Opening a collection for ``info`` should not load TensorFlow or PyTorch, so the model is
    loaded only when a query is encoded; then its name, argument, version and dimension must
    be those the collection was built with, or searching it would return nonsense.
    """

    def __init__(self, recorded: dict[str, Any], where: str, *, trusted: bool = False) -> None:
        self.recorded = recorded
        self.where = where
        self.trusted = trusted
        self.name = recorded["name"]
        self.dim = int(recorded["dim"])
        self.version = str(recorded.get("version"))
        self._inner: Encoder | None = None

    @property
    def inner(self) -> Encoder:
        if self._inner is None:
            check_trusted(self.recorded, self.where, self.trusted)
            encoder = get_encoder(self.recorded["name"], self.recorded.get("argument"))
            check_same_encoder(self.recorded, encoder, self.where)
            self._inner = encoder
        return self._inner

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode(texts)

    @property
    def fork_safe(self) -> bool:  # type: ignore[override]
        """From the encoder's class, without loading a model (and PyTorch) just to ask."""
        if self._inner is not None:
            return self._inner.fork_safe
        entry = _entry_points().get(self.name)
        return bool(getattr(entry.load(), "fork_safe", False)) if entry is not None else False

    def spec(self) -> dict[str, Any]:
        return dict(self.recorded)

    @property
    def argument(self) -> str | None:  # type: ignore[override]
        return self.recorded.get("argument")


def describe_spec(spec: dict[str, Any]) -> str:
    return f"{format_spec(spec.get('name', '?'), spec.get('argument'))} {spec.get('version')} ({spec.get('dim')} dimensions)"


def same_encoder(recorded: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Name, argument, version and dimension all equal. A manifest from before arguments were recorded has none."""
    keys = ("name", "argument", "version", "dim")
    return all(recorded.get(key) == spec.get(key) for key in keys)


def check_same_encoder(recorded: dict[str, Any], encoder: Encoder, where: str) -> None:
    spec = encoder.spec()
    if not same_encoder(recorded, spec):
        raise CollectionError(
            f"{where} was built with encoder {describe_spec(recorded)}; the query encoder is {describe_spec(spec)}. "
            "Search a collection with the encoder that built it"
        )


def chosen_by_collection(recorded: dict[str, Any]) -> bool:
    """Whether making the recorded encoder would load something the collection chose: any argument
    (a model directory, which may lie inside the collection itself, or a hub name). An installed
    encoder by its plain name (the bundled default, a plugin's) loads only installed code."""
    return bool(recorded.get("argument"))


def check_trusted(recorded: dict[str, Any], where: str, trusted: bool) -> None:
    """Refuse to load a model the collection names, unless the user said they trust it."""
    if trusted or not chosen_by_collection(recorded):
        return
    spec = format_spec(str(recorded.get("name")), recorded.get("argument"))
    raise CollectionError(
        f"{where} names the encoder {spec!r}: searching it would load and run a model the collection chose; "
        f"if you trust it, name it yourself with --encoder '{spec}' (Python: encoder='{spec}'), or pass --trust-encoder (trust_encoder=True)"
    )


def encoder_for_manifest(recorded: dict[str, Any], where: str, encoder: Encoder | str | None = None, *,
                         trusted: bool = False) -> Encoder:
    """The encoder to search a collection with.

    None: the one the manifest records, loaded on first use, and only if it is an installed
    encoder by its plain name or ``trusted`` (see ``check_trusted``). Anything else (an Encoder,
    a spec string: the user's own choice) must be the recorded one, or this raises CollectionError now.
    """
    if encoder is None:
        return RecordedEncoder(recorded, where, trusted=trusted)
    if not isinstance(encoder, Encoder):
        encoder = get_encoder(encoder)
    check_same_encoder(recorded, encoder, where)
    return encoder


def resolve_encoder(encoder: Encoder | str | None) -> Encoder:
    """An encoder as given, or made from its spec, or the default."""
    if isinstance(encoder, Encoder):
        return encoder
    return get_encoder(encoder or DEFAULT_ENCODER)
