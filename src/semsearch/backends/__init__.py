"""ANN backends by name. Each lives in its own module and imports its library only when used."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from semsearch.backends.base import MISSING_ID, VectorIndex
from semsearch.errors import SemsearchError

DEFAULT_BACKEND = "usearch"

# name -> "module:class"; a backend's library is imported only when the backend is chosen.
BACKENDS: dict[str, str] = {
    "annoy": "semsearch.backends.annoy:AnnoyIndex",
    "exact": "semsearch.backends.exact:ExactIndex",
    "faiss": "semsearch.backends.faiss:FaissIndex",
    "hnswlib": "semsearch.backends.hnswlib:HnswlibIndex",
    "usearch": "semsearch.backends.usearch:UsearchIndex",
}


# Backends semsearch bench measures and no collection may open (issue 12): ScaNN, whose saved files name paths it
# follows and are not checked yet (backends/scann.py). Looked up only by bench_only_class, never by backend_class.
BENCH_ONLY_BACKENDS: dict[str, str] = {"scann": "semsearch.backends.scann:ScannIndex"}

__all__ = ["BACKENDS", "BENCH_ONLY_BACKENDS", "bench_only_class", "DEFAULT_BACKEND", "MISSING_ID", "VectorIndex", "backend_class", "create_index"]


def backend_class(name: str) -> type[VectorIndex]:
    try:
        module_name, _, class_name = BACKENDS[name].partition(":")
    except KeyError:
        raise SemsearchError(f"no backend named {name!r}; choose one of {', '.join(BACKENDS)}") from None
    return getattr(import_module(module_name), class_name)


def create_index(name: str, dim: int, params: dict[str, Any] | None = None) -> VectorIndex:
    return backend_class(name)(dim, **(params or {}))


def bench_only_class(name: str) -> Any:
    """The class of a bench-only backend, or None when ``name`` is an ordinary one."""
    if name not in BENCH_ONLY_BACKENDS:
        return None
    module_name, _, class_name = BENCH_ONLY_BACKENDS[name].partition(":")
    return getattr(import_module(module_name), class_name)
