"""Remember which files were checked, so that a big collection is hashed once, not at every open.

A file's sha256 is trusted again while its device, inode, size, mtime and ctime are all as they
were when it was hashed: any write to the file, even one that puts the mtime back, moves its
ctime, which no user program can set. Keyed by device and inode, so the rename that puts a
freshly built collection in place keeps its files known. The record lives in the user's cache
directory; failing to read or write it costs only a fresh hash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

CACHE_FILE = "verified-files.json"
MAX_ENTRIES = 2000


def cache_directory() -> Path:
    """$SEMSEARCH_CACHE_DIR, else $XDG_CACHE_HOME/semsearch, else ~/.cache/semsearch."""
    if configured := os.environ.get("SEMSEARCH_CACHE_DIR"):
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "semsearch"


def _identity(path: Path) -> tuple[str, list[int]]:
    status = path.stat()
    key = f"{status.st_dev}:{status.st_ino}"
    return key, [status.st_size, status.st_mtime_ns, status.st_ctime_ns]


class VerifiedFiles:
    """sha256 digests of files as they were when hashed, from and to the user's cache."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or cache_directory()) / CACHE_FILE
        self._entries: dict[str, dict[str, object]] = {}
        self._changed = False
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self._entries = loaded
        except (OSError, ValueError):
            pass  # no record yet, or an unreadable one: every file is hashed afresh

    def known_digest(self, path: Path) -> str | None:
        key, stamp = _identity(path)
        entry = self._entries.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
            return str(entry["sha256"])
        return None

    def remember(self, path: Path, digest: str, stamp_before: tuple[str, list[int]]) -> None:
        """Record ``digest`` under the file's identity taken before hashing, if the file did not change meanwhile."""
        if _identity(path) != stamp_before:
            return
        key, stamp = stamp_before
        self._entries.pop(key, None)
        self._entries[key] = {"stamp": stamp, "sha256": digest}
        self._changed = True

    def save(self) -> None:
        if not self._changed:
            return
        entries = dict(list(self._entries.items())[-MAX_ENTRIES:])
        temporary = self.path.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(entries), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:  # a read-only or missing cache only costs hashing again next time
            try:
                temporary.unlink(missing_ok=True)
            except OSError:
                pass
        self._changed = False


def checked_digest(path: Path, verified: VerifiedFiles, digest: Callable[[Path], str]) -> str:
    """The file's sha256: remembered if the file is unchanged since it was hashed, else computed and remembered."""
    known = verified.known_digest(path)
    if known is not None:
        return known
    before = _identity(path)
    computed = digest(path)
    verified.remember(path, computed, before)
    return computed


def file_identity(path: Path) -> dict[str, Any]:
    """A file as build.json records it: a changed file is a different build."""
    status = path.stat()
    return {"path": str(path.resolve()), "size": status.st_size, "modified_ns": status.st_mtime_ns}
