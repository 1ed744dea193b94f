"""The one home of a collection directory's layout: its file names, its generations, its manifest, its lock.

Everything that knows what a collection looks like on disk asks here: the build (what to write
and what to call it), the update (where the next generation goes, what is no longer named),
the facade (where the current files are) and the benchmark (the manifest entries an index is
opened by). manifest.json says what a collection is, what built it, and the size and sha256 of
every file in it.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.errors import CollectionError
from semsearch.storage.verified import VerifiedFiles, checked_digest

if TYPE_CHECKING:  # only for hints: storage sits below backends and encoders
    from semsearch.backends.base import VectorIndex
    from semsearch.encoders.base import Encoder

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS_FILE = "documents.sqlite"
VECTORS_FILE = "vectors.npy"
REDUCER_FILE = "reducer.npz"
# The documents an approximate index cannot find by their own vectors, scored exactly (backends/reachability.py).
ORPHANS_FILE = "orphans.npz"
# A backend's own files are index.<backend> and names beginning with it (index.exact.ids, ...).
INDEX_FILE_PREFIX = "index."
# An update writes generation-N/; the collection root then holds only the manifest (and the lock).
GENERATION_PREFIX = "generation-"
UPDATE_LOCK_FILE = ".update.lock"
# Names a build writes at the top of a collection; deleted once a generation directory replaces them.
BUILD_FILE_PREFIXES = tuple(name if name == DOCUMENTS_FILE else name.split(".")[0] + "."
                            for name in (DOCUMENTS_FILE, VECTORS_FILE, INDEX_FILE_PREFIX, REDUCER_FILE, ORPHANS_FILE))
REQUIRED_KEYS = ("encoder", "backend", "files", "count")


def utc_now() -> str:
    """The manifest's timestamps: UTC, to the second, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


# -- where the current files are --


def generation_of(manifest: dict[str, Any]) -> int:
    return int(manifest.get("generation", 0))


def generation_directory(path: Path, generation: int) -> Path:
    return path / f"{GENERATION_PREFIX}{generation}"


def data_directory(path: Path, manifest: dict[str, Any]) -> Path:
    """Where the current files are: the collection itself after a build, ``generation-N`` after updates."""
    generation = generation_of(manifest)
    return path if generation == 0 else generation_directory(path, generation)


def remove_unreferenced(path: Path, manifest: dict[str, Any]) -> None:
    """Delete generation directories and build files the manifest does not name; nothing else."""
    referenced = {name.split("/", 1)[0] for name in manifest["files"]}
    for entry in path.iterdir():
        if entry.name in referenced:
            continue
        if entry.is_dir() and entry.name.startswith(GENERATION_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_file() and entry.name.startswith(BUILD_FILE_PREFIXES):
            entry.unlink(missing_ok=True)


@contextmanager
def update_lock(path: Path) -> Iterator[None]:
    """One writer at a time per collection (an update, or a build replacing it); readers never wait.

    The lock file is opened without following a link (a planted ``.update.lock`` symlink cannot
    make semsearch create or lock a file elsewhere). A build swaps the whole directory, lock file
    included, while holding the old one's lock; a writer that was waiting then holds the lock of a
    file no longer in place, so it takes the lock of the new one instead.
    """
    while True:
        descriptor = _open_no_follow(path / UPDATE_LOCK_FILE, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                current = os.lstat(path / UPDATE_LOCK_FILE)
            except FileNotFoundError:
                current = None
            held = os.fstat(descriptor)
            if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
                try:
                    yield
                finally:
                    fcntl.flock(descriptor, fcntl.LOCK_UN)
                return
        finally:
            os.close(descriptor)


def _open_no_follow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symbolic link in the last component, with a one-line error."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise CollectionError(f"{path} is a symbolic link; semsearch does not follow links inside a collection") from None
        raise


# -- the manifest: made, written, read and checked here only --


def index_entries(index: VectorIndex) -> dict[str, Any]:
    """The manifest's entries that say how to open an index: its backend and its reducer (or null)."""
    return {"backend": {"name": index.name, "params": index.params}, "reducer": index.reducer_spec()}


def new_manifest(encoder: Encoder, index: VectorIndex, *, count: int, source: str, files: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a freshly built collection (generation 0)."""
    from semsearch import __version__

    created = utc_now()
    return {
        "format_version": FORMAT_VERSION,
        "semsearch_version": __version__,
        "encoder": encoder.spec(),
        **index_entries(index),
        "metric": "cosine",
        "count": count,
        "source": source,
        "created": created,
        "updated": created,
        "files": files,
    }


def next_manifest(manifest: dict[str, Any], *, generation: int, count: int, files: dict[str, Any]) -> dict[str, Any]:
    """The manifest after an update: the same collection, a new generation of files."""
    from semsearch import __version__

    return {**manifest, "generation": generation, "count": count, "semsearch_version": __version__, "updated": utc_now(), "files": files}


def file_digest(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def describe_files(directory: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Size and sha256 of each file; the digests are remembered, so the first open need not hash again."""
    verified = VerifiedFiles()
    described = {
        name: {"size": (directory / name).stat().st_size, "sha256": checked_digest(directory / name, verified, file_digest)}
        for name in sorted(names)
    }
    verified.save()
    return described


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Written to a temporary file and renamed over the old one, so a reader sees one or the other."""
    temporary = directory / f".{MANIFEST}.tmp"
    try:
        os.unlink(temporary)  # a leftover, or a planted link: unlinking removes the link, never its target
    except FileNotFoundError:
        pass
    descriptor = _open_no_follow(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=2, sort_keys=True)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, directory / MANIFEST)


def is_collection(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def read_manifest(directory: Path) -> dict[str, Any]:
    if not directory.exists():
        raise CollectionError(f"{directory}: no such collection")
    path = directory / MANIFEST
    if not path.is_file():
        raise CollectionError(f"{directory}: not a semsearch collection (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CollectionError(f"{path}: corrupt manifest: {error}") from None
    if not isinstance(manifest, dict):
        raise CollectionError(f"{path}: corrupt manifest: expected a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise CollectionError(
            f"{path}: format version {version!r}, this semsearch reads version {FORMAT_VERSION}; rebuild the collection"
        )
    for key in REQUIRED_KEYS:
        if key not in manifest:
            raise CollectionError(f"{path}: corrupt manifest: no {key!r}")
    return manifest


def verify_files(directory: Path, manifest: dict[str, Any], *, checksums: bool = True) -> None:
    """Every file the manifest lists is present, of the recorded size, and (by default) of the recorded sha256.

    A file hashed before and not written since is not hashed again (see ``verified``): opening
    a million-headline collection would otherwise spend seconds on it every time.
    """
    verified = VerifiedFiles()
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise CollectionError(f"{directory}: {name} is missing")
        size = path.stat().st_size
        if size != expected["size"]:
            raise CollectionError(f"{path}: {size:,} bytes, the manifest says {expected['size']:,}; the file is damaged")
        if checksums and checked_digest(path, verified, file_digest) != expected["sha256"]:
            verified.save()
            raise CollectionError(f"{path}: checksum does not match the manifest; the file is damaged")
    verified.save()
