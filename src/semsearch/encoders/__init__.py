"""Encoders by name. Other packages add theirs through the ``semsearch.encoders`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from semsearch.encoders.base import Encoder, normalise
from semsearch.errors import SemsearchError

DEFAULT_ENCODER = "use-multilingual"

__all__ = ["DEFAULT_ENCODER", "Encoder", "get_encoder", "encoder_names", "normalise"]


def encoder_names() -> list[str]:
    return sorted(entry.name for entry in entry_points(group="semsearch.encoders"))


def get_encoder(spec: str = DEFAULT_ENCODER) -> Encoder:
    """An encoder from ``NAME`` or ``NAME:ARGUMENT`` (a model path, say)."""
    name, _, argument = spec.partition(":")
    matches = [entry for entry in entry_points(group="semsearch.encoders") if entry.name == name]
    if not matches:
        raise SemsearchError(f"no encoder named {name!r}; installed: {', '.join(encoder_names())}")
    factory = matches[0].load()
    return factory(argument or None)
