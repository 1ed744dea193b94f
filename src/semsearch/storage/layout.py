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
import math
import os
import re
import shutil
import stat
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


def new_manifest(encoder: Encoder, index: VectorIndex, *, count: int, source: str, files: dict[str, Any],
                 examples: list[str] | None = None) -> dict[str, Any]:
    """The manifest of a freshly built collection (generation 0); ``examples``: a few of its texts, for the search page."""
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


# What read_manifest accepts. A collection may come from anyone: every field the code reads is
# checked here, once, so that nothing after it meets a wrong type, a range it cannot handle or
# a file name that leads outside the collection.
MAX_MANIFEST_BYTES = 4 << 20
# Backend and reducer names, spelled out here because storage sits below backends (a test checks
# that they are the names backends.BACKENDS and backends.reduced.REDUCERS hold).
KNOWN_BACKENDS = ("annoy", "exact", "faiss", "hnswlib", "usearch")
KNOWN_REDUCERS = ("pca", "random-projection")
MAX_DIM = 65_536
# Candidates a reduced index may re-rank by default: the search asks the index for this many.
MAX_RERANK = 100_000
MAX_COUNT = 2**62
MAX_GENERATION = 2**31
MAX_FILES = 1_000
MAX_TEXT = 4_096
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Control characters, and the invisible or direction-changing ones a terminal would let a name hide behind.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _shown(value: Any) -> str:
    """A value from the manifest as an error message shows it: repr, cut short, so always one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _ManifestChecks:
    """The checks of one manifest: each failure is one line naming the manifest and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> CollectionError:
        return CollectionError(f"{self.path}: corrupt manifest: {field} {problem}")

    def mapping(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be an object, got {_shown(value)}")
        return value

    def integer(self, value: Any, field: str, minimum: int, maximum: int) -> int:
        if type(value) is not int:  # bool is an int to Python, never to a manifest
            raise self.fail(field, f"must be an integer, got {_shown(value)}")
        if not minimum <= value <= maximum:
            raise self.fail(field, f"must be from {minimum:,} to {maximum:,}, got {value:,}")
        return value

    def text(self, value: Any, field: str, *, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"must be a string, got {_shown(value)}")
        if not value and not empty:
            raise self.fail(field, "must not be empty")
        if len(value) > MAX_TEXT:
            raise self.fail(field, f"is longer than {MAX_TEXT:,} characters")
        if _CONTROL.search(value):
            raise self.fail(field, f"holds control characters: {_shown(value)}")
        return value

    def encoder(self, value: Any) -> int:
        encoder = self.mapping(value, "encoder")
        for key in ("name", "argument", "version", "dim"):
            if key not in encoder:
                raise self.fail("encoder", f"has no {key!r}")
        self.text(encoder["name"], "encoder.name")
        if encoder["argument"] is not None:
            self.text(encoder["argument"], "encoder.argument")
        self.text(encoder["version"], "encoder.version", empty=True)
        return self.integer(encoder["dim"], "encoder.dim", 1, MAX_DIM)

    def backend(self, value: Any) -> None:
        backend = self.mapping(value, "backend")
        for key in ("name", "params"):
            if key not in backend:
                raise self.fail("backend", f"has no {key!r}")
        name = self.text(backend["name"], "backend.name")
        if name not in KNOWN_BACKENDS:
            raise self.fail("backend.name", f"must be one of {', '.join(KNOWN_BACKENDS)}, got {_shown(name)}")
        for key, parameter in self.mapping(backend["params"], "backend.params").items():
            self.text(key, "backend.params name")
            field = f"backend.params.{key}"
            if isinstance(parameter, float) and not math.isfinite(parameter):
                raise self.fail(field, f"must be a finite number, got {_shown(parameter)}")
            if isinstance(parameter, str):
                self.text(parameter, field, empty=True)
            elif not isinstance(parameter, (bool, int, float)):
                raise self.fail(field, f"must be a number, a string or a boolean, got {_shown(parameter)}")

    def reducer(self, value: Any, dim: int) -> None:
        if value is None:
            return
        reducer = self.mapping(value, "reducer")
        for key in ("kind", "dim"):
            if key not in reducer:
                raise self.fail("reducer", f"has no {key!r}")
        kind = self.text(reducer["kind"], "reducer.kind")
        if kind not in KNOWN_REDUCERS:
            raise self.fail("reducer.kind", f"must be one of {', '.join(KNOWN_REDUCERS)}, got {_shown(kind)}")
        if dim < 2:
            raise self.fail("reducer", f"cannot reduce {dim} dimension")
        self.integer(reducer["dim"], "reducer.dim", 1, dim - 1)
        if "rerank" in reducer:
            self.integer(reducer["rerank"], "reducer.rerank", 0, MAX_RERANK)

    def files(self, value: Any, generation: int) -> None:
        files = self.mapping(value, "files")
        if len(files) > MAX_FILES:
            raise self.fail("files", f"names more than {MAX_FILES:,} files")
        for name, entry in files.items():
            check_file_name(name, generation, self.path)
            entry = self.mapping(entry, f"files[{name!r}]")
            for key in ("size", "sha256"):
                if key not in entry:
                    raise self.fail(f"files[{name!r}]", f"has no {key!r}")
            self.integer(entry["size"], f"files[{name!r}].size", 0, MAX_COUNT)
            if not isinstance(entry["sha256"], str) or not _SHA256.fullmatch(entry["sha256"]):
                raise self.fail(f"files[{name!r}].sha256", f"must be 64 lower-case hex digits, got {_shown(entry['sha256'])}")


def check_file_name(name: Any, generation: int, where: Path) -> None:
    """A file name from a manifest must name a file inside the collection's current generation:
    relative, normalised, no ``..``, no backslash or NUL, and in ``generation-N/`` (the manifest's N) or,
    for generation 0, at the top."""

    def refuse(problem: str) -> CollectionError:
        return CollectionError(f"{where}: corrupt manifest: file name {_shown(name)} {problem}")

    if not isinstance(name, str) or not name:
        raise refuse("is not a non-empty string")
    if len(name) > 255 or _CONTROL.search(name):
        raise refuse("is too long or holds control characters")
    if "\\" in name:
        raise refuse("holds a backslash")
    if name.startswith("/"):
        raise refuse("is absolute; the files of a collection are named relative to it")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise refuse("is not a normalised relative name (an empty part, '.' or '..')")
    if len(parts) > 2:
        raise refuse("has more than one directory level")
    if generation == 0 and len(parts) == 2:
        raise refuse("is in a directory, but the manifest's generation is 0")
    if generation > 0 and (len(parts) != 2 or parts[0] != f"{GENERATION_PREFIX}{generation}"):
        raise refuse(f"is not in {GENERATION_PREFIX}{generation}/, the manifest's generation")
    if parts[-1] == MANIFEST and len(parts) == 1:
        raise refuse("is the manifest itself")


def check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    """The manifest read from ``path``, if every field the code reads has its type and range; else one CollectionError line."""
    checks = _ManifestChecks(path)
    if not isinstance(manifest, dict):
        raise CollectionError(f"{path}: corrupt manifest: expected a JSON object")
    version = manifest.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise CollectionError(
            f"{path}: format version {_shown(version)}, this semsearch reads version {FORMAT_VERSION}; rebuild the collection"
        )
    for key in REQUIRED_KEYS:
        if key not in manifest:
            raise CollectionError(f"{path}: corrupt manifest: no {key!r}")
    checks.integer(manifest["count"], "count", 0, MAX_COUNT)
    dim = checks.encoder(manifest["encoder"])
    checks.backend(manifest["backend"])
    checks.reducer(manifest.get("reducer"), dim)
    generation = checks.integer(manifest.get("generation", 0), "generation", 0, MAX_GENERATION)
    checks.files(manifest["files"], generation)
    for key in ("semsearch_version", "source", "created", "updated", "metric"):
        if key in manifest:
            checks.text(manifest[key], key, empty=True)
    if manifest.get("metric", "cosine") != "cosine":
        raise checks.fail("metric", f"must be 'cosine', got {_shown(manifest['metric'])}")
    return manifest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


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


def _regular_file_digest(path: Path) -> str:
    """sha256 of a regular file, opened without following a link."""
    try:
        descriptor = _open_in_collection(path)
    except (FileNotFoundError, NotADirectoryError):
        raise CollectionError(f"{path} is missing") from None
    with os.fdopen(descriptor, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


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
    generation = generation_of(manifest)
    if generation:
        _checked_directory(generation_directory(directory, generation))
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
            if checksums and checked_digest(path, verified, _regular_file_digest) != expected["sha256"]:
                raise CollectionError(f"{path}: checksum does not match the manifest; the file is damaged")
    finally:
        verified.save()


def require_listed(manifest: dict[str, Any], names: list[str], where: Path) -> None:
    """Each of ``names`` (files of the current generation that will be opened) is one the manifest lists, so
    ``verify_files`` has checked it: a file it does not list could be anything, a link to anywhere included."""
    generation = generation_of(manifest)
    prefix = "" if generation == 0 else f"{GENERATION_PREFIX}{generation}/"
    for name in names:
        if prefix + name not in manifest["files"]:
            raise CollectionError(f"{where}: corrupt manifest: it does not list {prefix + name}, which the collection needs")
