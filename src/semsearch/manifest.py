"""manifest.json: what a collection is, what built it, and a checksum of every file in it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from semsearch.errors import CollectionError
from semsearch.verified import VerifiedFiles, checked_digest

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS_FILE = "documents.sqlite"
VECTORS_FILE = "vectors.npy"


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
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=2, sort_keys=True)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, directory / MANIFEST)


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
    for key in ("encoder", "backend", "files", "count"):
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
