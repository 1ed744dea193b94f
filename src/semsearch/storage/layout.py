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
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.errors import CollectionError
from semsearch.storage.segments import SegmentEntry
from semsearch.storage.verified import VerifiedFiles, checked_digest

if TYPE_CHECKING:  # only for hints: storage sits below backends and encoders
    from semsearch.backends.base import VectorIndex
    from semsearch.encoders.base import Encoder

# The names live in ``names`` and the checks in ``manifest_checks`` (which share the names);
# both are re-exported here, the layout's one home, so callers need look nowhere else.
from semsearch.storage.manifest_checks import (  # noqa: E402, F401
    KNOWN_BACKENDS,
    KNOWN_REDUCERS,
    MAX_DIM,
    MAX_MANIFEST_BYTES,
    MAX_RERANK,
    _reject_constant,
    check_file_name,
    check_manifest,
)
from semsearch.storage.names import (  # noqa: E402, F401
    BUILD_FILE_PREFIXES,
    DOCUMENTS_FILE,
    FORMAT_VERSION,
    GENERATION_PREFIX,
    INDEX_FILE_PREFIX,
    MANIFEST,
    ORPHANS_FILE,
    REDUCER_FILE,
    REQUIRED_KEYS,
    SEGMENT_PREFIX,
    UPDATE_LOCK_FILE,
    VECTORS_FILE,
)


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
        if entry.is_dir() and not entry.is_symlink() and entry.name.startswith((GENERATION_PREFIX, SEGMENT_PREFIX)):
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


def new_manifest(encoder: Encoder, index: VectorIndex, *, count: int, source: str, files: dict[str, Any],
                 examples: list[str] | None = None, ids: str = "integer", next_key: int | None = None) -> dict[str, Any]:
    """The manifest of a freshly built collection (generation 0, one segment, its files at the top); ``examples``:
    a few of its texts, for the search page; ``ids``: "integer" or "string"; ``next_key``: the key after the largest."""
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
        "examples": list(examples or []),
        "files": files,
        "ids": ids,
        "next_key": count if next_key is None else next_key,
        "segments": [SegmentEntry("base", "", count, 0, max(count if next_key is None else next_key, 1) - 1).as_json()],
    }


def next_manifest(manifest: dict[str, Any], *, generation: int, files: dict[str, Any], segments: list[SegmentEntry],
                  next_key: int, ids: str) -> dict[str, Any]:
    """The manifest after an update or a merge: the same collection, in version 2, with these segments and files."""
    from semsearch import __version__

    return {**manifest, "format_version": FORMAT_VERSION, "generation": generation, "count": sum(s.live for s in segments),
            "semsearch_version": __version__, "updated": utc_now(), "files": files, "segments": [s.as_json() for s in segments],
            "next_key": next_key, "ids": ids}


def file_digest(path: Path) -> str:
    """sha256 of a regular file, opened without following a link (a collection's files are never links)."""
    try:
        descriptor = _open_in_collection(path)
    except (FileNotFoundError, NotADirectoryError):
        raise CollectionError(f"{path} is missing") from None
    with os.fdopen(descriptor, "rb") as stream:
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


def _open_in_collection(path: Path) -> int:
    """A read-only descriptor of a regular file inside a collection: never through a symbolic link in the
    last component, never blocking on a FIFO or device. A CollectionError line otherwise."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise CollectionError(f"{path} is a symbolic link; semsearch does not follow links inside a collection") from None
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            raise  # the caller says what is missing
        raise CollectionError(f"{path}: cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise CollectionError(f"{path} is not a regular file")
    return descriptor


def read_manifest(directory: Path) -> dict[str, Any]:
    """The collection's manifest, read without following a link and checked field by field (``check_manifest``)."""
    if not directory.exists():
        raise CollectionError(f"{directory}: no such collection")
    path = directory / MANIFEST
    try:
        descriptor = _open_in_collection(path)
    except (FileNotFoundError, NotADirectoryError):
        raise CollectionError(f"{directory}: not a semsearch collection (no {MANIFEST})") from None
    with os.fdopen(descriptor, "rb") as stream:
        data = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise CollectionError(f"{path}: corrupt manifest: larger than {MAX_MANIFEST_BYTES:,} bytes")
    try:
        manifest = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error).splitlines()[0][:200]
        raise CollectionError(f"{path}: corrupt manifest: {reason}") from None
    return check_manifest(manifest, path)


def _checked_directory(path: Path) -> None:
    """A generation directory must be a directory of the collection, not a link to one elsewhere."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        raise CollectionError(f"{path.parent}: {path.name}/ is missing") from None
    if stat.S_ISLNK(status.st_mode):
        raise CollectionError(f"{path} is a symbolic link; semsearch does not follow links inside a collection")
    if not stat.S_ISDIR(status.st_mode):
        raise CollectionError(f"{path} is not a directory")


def verify_files(directory: Path, manifest: dict[str, Any], *, checksums: bool = True) -> None:
    """Every file the manifest lists is present, a regular file (not a link), of the recorded size, and (by default)
    of the recorded sha256.

    A file hashed before and not written since is not hashed again (see ``verified``): opening
    a million-headline collection would otherwise spend seconds on it every time. Nothing is
    followed out of the collection: a link, as a file or as the generation directory, is an error,
    so no size or content of a file elsewhere is ever read or told.
    """
    for subdirectory in sorted({name.split("/", 1)[0] for name in manifest["files"] if "/" in name}):
        _checked_directory(directory / subdirectory)  # a generation's or a segment's: never a link to elsewhere
    verified = VerifiedFiles()
    try:
        for name, expected in manifest["files"].items():
            path = directory / name
            try:
                status = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                raise CollectionError(f"{directory}: {name} is missing") from None
            if stat.S_ISLNK(status.st_mode):
                raise CollectionError(f"{path} is a symbolic link; semsearch does not follow links inside a collection")
            if not stat.S_ISREG(status.st_mode):
                raise CollectionError(f"{path} is not a regular file")
            if status.st_size != expected["size"]:
                raise CollectionError(f"{path}: {status.st_size:,} bytes, the manifest says {expected['size']:,}; the file is damaged")
            if checksums and checked_digest(path, verified, file_digest) != expected["sha256"]:
                raise CollectionError(f"{path}: checksum does not match the manifest; the file is damaged")
    finally:
        verified.save()


def require_listed(manifest: dict[str, Any], names: list[str], where: Path, prefix: str) -> None:
    """Each of ``names`` (files in the directory ``prefix`` names, that will be opened) is one the manifest lists, so
    ``verify_files`` has checked it: a file it does not list could be anything, a link to anywhere included."""
    for name in names:
        if prefix + name not in manifest["files"]:
            raise CollectionError(f"{where}: corrupt manifest: it does not list {prefix + name}, which the collection needs")
