"""Put a freshly written directory in place of an old one, so that a reader never sees half of either."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step with Linux renameat2(RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    return result == 0


def fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_files(directory: Path, names: Iterable[str] | None = None) -> list[str]:
    """fsync the named files of ``directory`` (by default every file in it), then the directory itself.

    What makes a set of files durable before a switch names them: a build's workspace, an
    update's generation, an index snapshot. Returns the names, sorted.
    """
    chosen = sorted(names if names is not None else (entry.name for entry in directory.iterdir() if entry.is_file()))
    for name in chosen:
        with (directory / name).open("rb") as stream:
            os.fsync(stream.fileno())
    fsync_directory(directory)
    return chosen


def replace_directory(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is swapped out atomically, then deleted.

    Where the atomic swap is not available, the old directory is first renamed aside to
    ``.<name>.old``; ``recover_directory`` puts it back if a crash came between the two renames.
    """
    sync_files(new)
    if not target.exists():
        os.rename(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new)
    else:
        aside = target.with_name(f".{target.name}.old")
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(target, aside)
        os.rename(new, target)
        shutil.rmtree(aside)
    fsync_directory(target.parent)


def recover_directory(target: Path) -> None:
    """Undo a swap that a crash cut between its two renames."""
    aside = target.with_name(f".{target.name}.old")
    if not target.exists() and aside.is_dir():
        os.rename(aside, target)
