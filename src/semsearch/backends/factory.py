"""Every collection's index is made or opened here: a backend's own, or one over reduced vectors.

``new_index`` for a build, ``open_index`` for the files of a collection (with its reducer if
the manifest names one), ``empty_like`` for an update that rebuilds. The old module
``semsearch.reduce`` is this one (see ``semsearch._moved``), so these names are re-exported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semsearch.backends import VectorIndex, backend_class, create_index
from semsearch.errors import SemsearchError
from semsearch.backends.reduced import REDUCERS, PrincipalComponents, RandomProjection, ReducedIndex, Reducer, parse_reducer
from semsearch.storage.layout import REDUCER_FILE, VECTORS_FILE

__all__ = [
    "REDUCERS", "REDUCER_FILE", "PrincipalComponents", "RandomProjection", "ReducedIndex", "Reducer", "empty_like", "new_index",
    "open_index", "parse_reducer", "reducer_spec",
]


def reducer_spec(index: VectorIndex) -> dict[str, Any] | None:
    """The manifest's "reducer" entry for an index: null without a reducer."""
    return index.reducer_spec()


def new_index(backend: str, dim: int, params: dict[str, Any] | None = None, reducer: Reducer | str | None = None,
              *, rerank: int = 0) -> VectorIndex:
    """An empty index for a build: the backend's own, or, with a reducer, one over reduced vectors."""
    if reducer is None:
        return create_index(backend, dim, params)
    if isinstance(reducer, str):
        reducer = parse_reducer(reducer)
    if reducer.dim >= dim:
        raise SemsearchError(f"cannot reduce {dim} dimensions to {reducer.dim}: that is not fewer")
    return ReducedIndex(create_index(backend, reducer.dim, params), reducer, rerank=rerank)


def open_index(directory: Path, manifest: dict[str, Any], *, mmap: bool = True) -> VectorIndex:
    """Open the index of the collection files in ``directory``, with its reducer if the manifest names one."""
    backend = manifest["backend"]
    reducer_entry = manifest.get("reducer")
    if not reducer_entry:
        return backend_class(backend["name"]).load(directory, int(manifest["encoder"]["dim"]), backend["params"], mmap=mmap)
    reducer = Reducer.load(directory)
    inner = backend_class(backend["name"]).load(directory, reducer.dim, backend["params"], mmap=mmap)
    return ReducedIndex(inner, reducer, rerank=int(reducer_entry.get("rerank", 0)), full_vectors=directory / VECTORS_FILE)


def empty_like(index: VectorIndex, dim: int) -> VectorIndex:
    """A new, empty index with the same backend, parameters and (fitted) reducer, for a rebuild."""
    if isinstance(index, ReducedIndex):
        return ReducedIndex(create_index(index.inner.name, index.inner.dim, index.params), index.reducer, rerank=index.rerank)
    return create_index(index.name, dim, index.params)
