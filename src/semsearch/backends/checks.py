"""Checking an index file before its library sees it.

A collection may come from anyone, and its checksums only say that its files are the ones its
manifest names, not that they are sound: a library handed a crafted file reads and writes
wherever its numbers point (usearch, hnswlib, annoy and faiss all crashed on one changed byte).
So each backend parses its own file format here first, in Python, with every offset checked
against the file's size, and compares what it finds with what the manifest says (dimension,
metric, scalar type, counts); graphs and trees are walked whole (every link within bounds and
on a level its target has, every child before its parent). Anything else is refused, in one
line, before the library is called.

Checking reads the whole index once, as the sha256 check does, so a file that passed is
remembered like a hashed file is (``storage.verified``): by device, inode, size, mtime and
ctime, together with what it was checked against, in the user's cache directory. Any write to
the file moves its ctime, and a copy is a new inode, so a file changed since is checked again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import stat
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from semsearch.errors import CollectionError
from semsearch.storage.verified import cache_directory

# Bump when a check changes, so that files passed by an older check are checked again.
CHECKS_VERSION = 1
CACHE_FILE = "checked-index-files.json"
MAX_ENTRIES = 2000
# Rows handled at once by the vectorised checks: bounds their memory to a few tens of MB.
CHUNK_ROWS = 65_536


class IndexFileError(CollectionError):
    """An index file that is not what its backend writes, or not what the manifest says it is."""


def damaged(path: Path, problem: str) -> IndexFileError:
    return IndexFileError(f"{path}: not a sound index file: {problem}")


# -- reading a file inside a collection --


class FileBytes:
    """A file of a collection, read-only and memory-mapped, with every read checked against its size.

    Opened without following a link and refusing anything but a regular file, so that a check
    never reads (or blocks on) something outside the collection.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise IndexFileError(f"{path} is missing") from None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise IndexFileError(f"{path} is a symbolic link; semsearch does not follow links inside a collection") from None
            raise IndexFileError(f"{path}: cannot be read: {error.strerror}") from None
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise IndexFileError(f"{path} is not a regular file")
            self.size = status.st_size
            self._map = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ) if self.size else None
        finally:
            os.close(descriptor)
        self.bytes = np.frombuffer(self._map, dtype=np.uint8) if self._map is not None else np.zeros(0, dtype=np.uint8)
        self.position = 0

    def close(self) -> None:
        # Arrays made from the map may outlive this object; the map is closed when the last goes.
        self.bytes = np.zeros(0, dtype=np.uint8)
        self._map = None

    def __enter__(self) -> FileBytes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fail(self, problem: str) -> IndexFileError:
        return damaged(self.path, problem)

    def need(self, offset: int, length: int, what: str) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise self.fail(f"{what} at byte {offset:,} ({length:,} bytes) lies beyond the end of the file ({self.size:,} bytes)")

    def array(self, offset: int, dtype: Any, count: int, what: str) -> np.ndarray:
        """``count`` items of ``dtype`` at ``offset``, a view of the file (no copy)."""
        dtype = np.dtype(dtype)
        self.need(offset, count * dtype.itemsize, what)
        return np.frombuffer(self.bytes, dtype=dtype, count=count, offset=offset) if count else np.zeros(0, dtype=dtype)

    def unpack(self, offset: int, layout: str, what: str) -> tuple[Any, ...]:
        self.need(offset, struct.calcsize(layout), what)
        return struct.unpack_from(layout, self.bytes, offset)

    # A cursor, for formats read front to back.

    def read(self, layout: str, what: str) -> tuple[Any, ...]:
        values = self.unpack(self.position, layout, what)
        self.position += struct.calcsize(layout)
        return values

    def one(self, layout: str, what: str) -> Any:
        return self.read(layout, what)[0]

    def take(self, dtype: Any, count: int, what: str) -> np.ndarray:
        values = self.array(self.position, dtype, count, what)
        self.position += count * np.dtype(dtype).itemsize
        return values

    def skip(self, length: int, what: str) -> None:
        self.need(self.position, length, what)
        self.position += length

    def at_end(self, what: str) -> None:
        if self.position != self.size:
            raise self.fail(f"{self.size - self.position:,} bytes after the end of the {what}")


def gather(source: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``length`` bytes from each of ``starts`` (offsets into the uint8 ``source``), as a (len(starts), length) array.

    For records at offsets that are not a multiple of their alignment (usearch's nodes): the
    result is C-contiguous, so it can be viewed as little-endian words."""
    if len(starts) == 0:
        return np.zeros((0, length), dtype=np.uint8)
    return source[starts.astype(np.int64)[:, None] + np.arange(length, dtype=np.int64)[None, :]]


def chunks(count: int, rows: int = CHUNK_ROWS) -> Iterator[slice]:
    for start in range(0, count, rows):
        yield slice(start, min(count, start + rows))


# A float is NaN or infinite when every bit of its exponent is set, by width in bytes.
EXPONENT_MASKS = {2: 0x7C00, 4: 0x7F80_0000, 8: 0x7FF0_0000_0000_0000}


def finite_floats(values: np.ndarray) -> bool:
    """True when no element of a float array (any width) is NaN or infinite.

    Tested on the bits, viewed as unsigned integers of the same width and byte order: NumPy's isfinite on float16
    took 2 s for a million 512-dimension vectors, the integer test a small part of that."""
    mask = EXPONENT_MASKS.get(values.dtype.itemsize) if values.dtype.kind == "f" else None
    if mask is None:
        return all(np.isfinite(values[part]).all() for part in chunks(len(values), CHUNK_ROWS * 16))
    words = values.view(values.dtype.str.replace("f", "u"))
    return not any(((words[part] & mask) == mask).any() for part in chunks(len(words), CHUNK_ROWS * 16))


def all_distinct(values: np.ndarray) -> bool:
    """True when no value repeats: at once when they ascend (as a build writes keys), else by sorting, which is
    several times faster than np.unique's hashing on a million keys."""
    if len(values) < 2 or bool((values[1:] > values[:-1]).all()):
        return True
    ordered = np.sort(values)
    return not bool((ordered[1:] == ordered[:-1]).any())


def finite_bfloat16(values: np.ndarray) -> bool:
    """bfloat16 as uint16 words: an all-ones exponent is NaN or infinity."""
    return not bool(((values & 0x7F80) == 0x7F80).any())


# -- .npy files beside an index --


def npy_header(head: bytes, fail: Callable[[str], Exception], *, fortran_ok: bool = False) -> tuple[tuple[int, ...], np.dtype, int, bool]:
    """(shape, dtype, data offset, Fortran order) of a .npy image's header, read with NumPy's own parser (a literal, never code)."""
    import io

    stream = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except (ValueError, SyntaxError, TypeError, EOFError, OverflowError, MemoryError, KeyError) as error:
        detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise fail(f"not a .npy array: {detail}") from None
    if fortran and not fortran_ok:
        raise fail("is in Fortran order; semsearch writes C order")
    if dtype.hasobject or any(not isinstance(length, int) or length < 0 for length in shape):
        raise fail(f"holds {dtype} in shape {shape}")
    return tuple(shape), dtype, stream.tell(), bool(fortran)


def npy_checked(shape: tuple[int, ...], dtype: np.dtype, offset: int, size: int, expected_dtype: str,
                 accept: Callable[[tuple[int, ...]], str | None], fail: Callable[[str], Exception]) -> int:
    """The number of items, after checking dtype, shape and that header plus data is exactly ``size`` bytes."""
    if dtype != np.dtype(expected_dtype):
        raise fail(f"holds {dtype}, expected {np.dtype(expected_dtype)}")
    problem = accept(shape)
    if problem:
        raise fail(problem)
    count = int(np.prod(shape, dtype=object))
    expected = offset + count * dtype.itemsize
    if expected != size:
        raise fail(f"a {shape} array takes {expected:,} bytes, there are {size:,}")
    return count


def check_npy(path: Path, dtype: str, shape: Callable[[tuple[int, ...]], str | None], *, finite: bool = False) -> tuple[int, ...]:
    """The shape of a .npy file, after checking its header: the given dtype, C order, a shape
    ``shape`` accepts (it returns a problem, or None), and a size that is exactly header plus data.

    On a file opened as ``FileBytes`` opens it, so a header that claims more rows than the file
    holds is refused before NumPy allocates or maps them."""
    with FileBytes(path) as file:
        found_shape, found_dtype, offset, _ = npy_header(bytes(file.bytes[: min(file.size, 65_536 + 16)]), file.fail)
        count = npy_checked(found_shape, found_dtype, offset, file.size, dtype, shape, file.fail)
        if finite and found_dtype.kind == "f" and not finite_floats(file.array(offset, found_dtype, count, "the array")):
            raise file.fail("holds NaN or infinite values")
        return found_shape


def npy_from_bytes(data: bytes, dtype: str, shape: Callable[[tuple[int, ...]], str | None],
                   fail: Callable[[str], Exception]) -> np.ndarray:
    """A .npy image held in memory (a member of an .npz), checked as ``check_npy`` checks a file, as a C-order array
    (``np.save`` writes a Fortran-order array, PCA's components, as such)."""
    found_shape, found_dtype, offset, fortran = npy_header(data[: 65_536 + 16], fail, fortran_ok=True)
    count = npy_checked(found_shape, found_dtype, offset, len(data), dtype, shape, fail)
    flat = np.frombuffer(data, dtype=found_dtype, count=count, offset=offset)
    return np.ascontiguousarray(flat.reshape(found_shape, order="F" if fortran else "C"))


# -- remembering files that passed --


def _stamp(path: Path) -> list[int]:
    status = os.lstat(path)
    return [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns]


def _key(paths: Sequence[Path], signature: dict[str, Any]) -> str:
    described = json.dumps({"checks": CHECKS_VERSION, "signature": signature, "files": [_stamp(path) for path in paths]}, sort_keys=True)
    return hashlib.sha256(described.encode()).hexdigest()


class CheckedFiles:
    """Keys of (files as they were, what they were checked against) that passed, from and to the user's cache."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or cache_directory()) / CACHE_FILE
        self._keys: dict[str, None] = {}
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(loaded, list):
                self._keys = dict.fromkeys(key for key in loaded if isinstance(key, str))
        except (OSError, ValueError, RecursionError):
            pass  # no record yet, or an unreadable one: every file is checked afresh

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def add(self, key: str) -> None:
        self._keys.pop(key, None)
        self._keys[key] = None
        keys = list(self._keys)[-MAX_ENTRIES:]
        temporary = self.path.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(keys), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:  # a read-only cache only costs checking again next time
            try:
                temporary.unlink(missing_ok=True)
            except OSError:
                pass


def checked_once(paths: Sequence[Path], signature: dict[str, Any], check: Callable[[], None]) -> None:
    """Run ``check`` over ``paths`` unless these very files passed it before against the same ``signature``."""
    try:
        key = _key(paths, signature)
    except FileNotFoundError as error:
        raise IndexFileError(f"{error.filename} is missing") from None
    except OSError as error:
        raise IndexFileError(f"{error.filename}: cannot be read: {error.strerror}") from None
    record = CheckedFiles()
    if key in record:
        return
    check()
    if _key(paths, signature) == key:  # unchanged while it was checked
        record.add(key)


@contextmanager
def library_errors(path: Path, backend: str) -> Iterator[None]:
    """A library's own error while opening a checked file, as one CollectionError line."""
    try:
        yield
    except CollectionError:
        raise
    except (RuntimeError, ValueError, OSError, MemoryError, TypeError, IndexError, AssertionError) as error:
        message = " ".join(str(error).split())[:300] or type(error).__name__
        raise CollectionError(f"{path}: the {backend} index cannot be opened: {message}") from None
