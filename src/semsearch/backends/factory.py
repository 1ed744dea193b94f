"""Every collection's index is made or opened here: a backend's own, or one over reduced vectors.

``new_index`` for a build, ``open_index`` for the files of a collection (with its reducer if
the manifest names one), ``empty_like`` for an update that rebuilds. The old module
``semsearch.reduce`` is this one (see ``semsearch._moved``), so these names are re-exported.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.backends import VectorIndex, backend_class, create_index
from semsearch.backends.checks import (
    IndexFileError, all_distinct, check_npy, checked_once, damaged, finite_floats, npy_checked, npy_from_bytes, npy_header,
)
from semsearch.errors import CollectionError, SemsearchError
from semsearch.backends.reduced import REDUCERS, PrincipalComponents, RandomProjection, ReducedIndex, Reducer, parse_reducer
from semsearch.storage.layout import (
    DOCUMENTS_FILE, GENERATION_PREFIX, ORPHANS_FILE, REDUCER_FILE, VECTORS_FILE, generation_of, require_listed,
)
from semsearch.storage.segments import SegmentEntry
from semsearch.storage.vector_file import ids_path

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


def open_index(directory: Path, manifest: dict[str, Any], *, mmap: bool = True, segment: SegmentEntry | None = None) -> VectorIndex:
    """Open the index of the collection files in ``directory``, with its reducer if the manifest names one.

    ``manifest`` is one ``layout.read_manifest`` checked, whose files ``layout.verify_files`` found
    in place. Every file opened here must be one it lists (so it was checked: a regular file of the
    collection, not a link), and each is checked for what it holds before a library reads it (see
    ``backends.checks``): a crafted collection is one CollectionError line, never a crash. ``segment``:
    the segment of a version-2 collection whose files are in ``directory`` (without it, a version-1
    collection's current generation)."""
    backend = manifest["backend"]
    reducer_entry = manifest.get("reducer")
    dim = int(manifest["encoder"]["dim"])
    try:
        cls = backend_class(backend["name"])
    except SemsearchError as error:
        raise CollectionError(f"{directory}: {error}") from None
    needed = [DOCUMENTS_FILE, *cls.saved_files()]
    if reducer_entry or not cls.keeps_vectors:
        needed += [VECTORS_FILE, ids_path(Path(VECTORS_FILE)).name]
    if reducer_entry:
        needed.append(REDUCER_FILE)
    if segment is None:
        generation = generation_of(manifest)
        prefix, count = (f"{GENERATION_PREFIX}{generation}/" if generation else ""), int(manifest["count"])
    else:
        prefix, count = segment.prefix, segment.rows
    require_listed(manifest, needed, directory, prefix)
    for name in (VECTORS_FILE, ids_path(Path(VECTORS_FILE)).name, REDUCER_FILE, ORPHANS_FILE):  # read when present
        if os.path.lexists(directory / name) and prefix + name not in manifest["files"]:
            raise CollectionError(f"{directory}: holds {name}, which the manifest does not list")
    if VECTORS_FILE in needed:
        check_vector_files(directory / VECTORS_FILE, dim, count)
    if prefix + ORPHANS_FILE in manifest["files"]:
        check_orphans_file(directory / ORPHANS_FILE, int(reducer_entry["dim"]) if reducer_entry else dim)
    if not reducer_entry:
        return cls.load(directory, dim, backend["params"], mmap=mmap)
    reducer = load_reducer(directory / REDUCER_FILE, str(reducer_entry["kind"]), int(reducer_entry["dim"]), dim)
    inner = cls.load(directory, reducer.dim, backend["params"], mmap=mmap)
    return ReducedIndex(inner, reducer, rerank=int(reducer_entry.get("rerank", 0)), full_vectors=directory / VECTORS_FILE)


def check_vector_files(path: Path, dim: int, count: int) -> None:
    """vectors.npy: (count, dim) finite float16; vectors.ids.npy: count distinct document ids, one per row."""
    ids_file = ids_path(path)

    def check() -> None:
        check_npy(path, "<f2", lambda shape: None if shape == (count, dim) else f"has shape {shape}, expected ({count:,}, {dim})",
                  finite=True)
        check_npy(ids_file, "<i8", lambda shape: None if shape == (count,) else f"has shape {shape}, expected ({count:,},)")
        ids = np.load(ids_file, allow_pickle=False)
        if len(ids) and (ids.min() < 0 or not all_distinct(ids)):
            raise damaged(ids_file, "ids that are not distinct document ids")

    checked_once([path, ids_file], {"vectors": 1, "dim": dim, "count": count}, check)


REDUCER_MEMBERS = ("kind.npy", "components.npy", "mean.npy")
ORPHANS_MEMBERS = ("ids.npy", "vectors.npy")


def npz_members(path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The members of an .npz as ``np.savez`` writes it: exactly ``names``, stored uncompressed (so no
    member is larger than the archive: no decompression bomb), each read whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if sorted(members) != sorted(names) or len(archive.infolist()) != len(names):
                raise damaged(path, f"members {sorted(members)[:5]}, expected {list(names)}")
            size = path.stat().st_size
            if any(info.compress_type != zipfile.ZIP_STORED or info.file_size > size for info in members.values()):
                raise damaged(path, "a compressed member; numpy.savez stores them uncompressed")
            return {name: archive.read(name) for name in names}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError, OSError, KeyError) as error:
        raise damaged(path, f"not a readable archive: {' '.join(str(error).split())[:120]}") from None


def check_orphans_file(path: Path, dim: int) -> None:
    """orphans.npz (``reachability.Orphans.save``): n distinct document ids and their (n, dim) finite float16 vectors."""

    def check() -> None:
        def fail(problem: str) -> IndexFileError:
            return damaged(path, problem)

        data = npz_members(path, ORPHANS_MEMBERS)
        ids = npy_from_bytes(data["ids.npy"], "<i8", lambda s: None if len(s) == 1 else f"its ids have shape {s}", fail)
        npy_from_bytes(data["vectors.npy"], "<f2", lambda s: None if s == (len(ids), dim) else
                       f"its vectors have shape {s}, expected ({len(ids)}, {dim})", fail)
        vectors = npy_from_bytes(data["vectors.npy"], "<f2", lambda s: None, fail)
        if len(ids) and (ids.min() < 0 or not all_distinct(ids)):
            raise fail("ids that are not distinct document ids")
        if not finite_floats(vectors):
            raise fail("NaN or infinite values")

    checked_once([path], {"orphans": 1, "dim": dim}, check)


def load_reducer(path: Path, kind: str, reduced_dim: int, dim: int) -> Reducer:
    """reducer.npz as ``Reducer.save`` writes it (three stored, uncompressed arrays), checked against the manifest's
    reducer before its arrays are read: a crafted archive (a compressed bomb, a header claiming a huge shape) is refused."""

    def fail(problem: str) -> IndexFileError:
        return damaged(path, problem)

    data = npz_members(path, REDUCER_MEMBERS)
    shape, dtype, offset, _ = npy_header(data["kind.npy"][: 65_536 + 16], fail)
    if dtype.kind != "U" or shape != ():
        raise fail(f"its kind is {dtype} of shape {shape}, expected a string")
    npy_checked(shape, dtype, offset, len(data["kind.npy"]), dtype.str, lambda _: None, fail)
    found_kind = str(np.frombuffer(data["kind.npy"], dtype=dtype, count=1, offset=offset)[0])
    if found_kind != kind or kind not in REDUCERS:
        raise fail(f"a {found_kind!r} reducer, the manifest says {kind!r}")
    components = npy_from_bytes(data["components.npy"], "<f4", lambda s: None if s == (reduced_dim, dim) else
                                f"its components have shape {s}, expected ({reduced_dim}, {dim})", fail)
    mean = npy_from_bytes(data["mean.npy"], "<f4", lambda s: None if s == (dim,) else f"its mean has shape {s}, expected ({dim},)", fail)
    if not (finite_floats(components) and finite_floats(mean)):
        raise fail("NaN or infinite values")
    return REDUCERS[kind](reduced_dim, components, mean)


def empty_like(index: VectorIndex, dim: int) -> VectorIndex:
    """A new, empty index with the same backend, parameters and (fitted) reducer, for a rebuild."""
    if isinstance(index, ReducedIndex):
        return ReducedIndex(create_index(index.inner.name, index.inner.dim, index.params), index.reducer, rerank=index.rerank)
    return create_index(index.name, dim, index.params)
