"""The manifest checked before anything trusts it: every field's type and range, every file name inside the collection.

A manifest may come from a stranger: nothing it says is used before ``check_manifest`` passes.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semsearch.errors import CollectionError
from semsearch.storage.names import FORMAT_VERSION, GENERATION_PREFIX, MANIFEST, READABLE_FORMATS, REQUIRED_KEYS
from semsearch.storage.segments import check_segments

if TYPE_CHECKING:  # only for hints: storage sits below backends and encoders
    pass


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

    def files(self, value: Any, generation: int | None) -> None:
        """``generation``: the version-1 manifest's (its files are in that generation's directory), None for version 2."""
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


def check_file_name(name: Any, generation: int | None, where: Path) -> None:
    """A file name from a manifest must name a file inside the collection's current generation:
    relative, normalised, no ``..``, no backslash or NUL, and in ``generation-N/`` (the manifest's N) or,
    for generation 0, at the top. In version 2 (``generation`` None) it may be at the top or one level
    down, in a segment's directory (``segments.check_segments`` checks which)."""

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
    if generation is None:
        pass
    elif generation == 0 and len(parts) == 2:
        raise refuse("is in a directory, but the manifest's generation is 0")
    elif generation > 0 and (len(parts) != 2 or parts[0] != f"{GENERATION_PREFIX}{generation}"):
        raise refuse(f"is not in {GENERATION_PREFIX}{generation}/, the manifest's generation")
    if parts[-1] == MANIFEST and len(parts) == 1:
        raise refuse("is the manifest itself")


def check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    """The manifest read from ``path``, if every field the code reads has its type and range; else one CollectionError line."""
    checks = _ManifestChecks(path)
    if not isinstance(manifest, dict):
        raise CollectionError(f"{path}: corrupt manifest: expected a JSON object")
    version = manifest.get("format_version")
    if type(version) is not int or version not in READABLE_FORMATS:
        newer = type(version) is int and version > FORMAT_VERSION
        raise CollectionError(
            f"{path}: format version {_shown(version)}, this semsearch reads versions {READABLE_FORMATS[0]} to {FORMAT_VERSION}; "
            + ("upgrade semsearch" if newer else "rebuild the collection")
        )
    for key in REQUIRED_KEYS:
        if key not in manifest:
            raise CollectionError(f"{path}: corrupt manifest: no {key!r}")
    checks.integer(manifest["count"], "count", 0, MAX_COUNT)
    dim = checks.encoder(manifest["encoder"])
    checks.backend(manifest["backend"])
    checks.reducer(manifest.get("reducer"), dim)
    generation = checks.integer(manifest.get("generation", 0), "generation", 0, MAX_GENERATION)
    checks.files(manifest["files"], generation if version == 1 else None)
    if version >= 2:
        check_segments(manifest, checks.fail)
    for key in ("semsearch_version", "source", "created", "updated", "metric"):
        if key in manifest:
            checks.text(manifest[key], key, empty=True)
    if manifest.get("metric", "cosine") != "cosine":
        raise checks.fail("metric", f"must be 'cosine', got {_shown(manifest['metric'])}")
    return manifest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


