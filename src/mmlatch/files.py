"""Writing files: every file the project writes goes through :func:`atomic_write`.

A file is written to a temporary name in its target's directory and renamed over the target,
so a reader (or a killed process) never sees half a file. ``tempfile.mkstemp`` creates its
file with mode 0600 whatever the umask; :func:`atomic_write` sets the mode a plain ``open``
would have given (0666 minus the umask), so colleagues on shared storage can read results
exactly when they can read the CSVs and plots beside them. The file is flushed to the disk
(``fsync``) before the rename, so a full disk (ENOSPC, often reported only at that point), a
file-size limit (EFBIG), an I/O error or a refused permission fails the write while the old
file is still whole: :class:`WriteError` names the file and the reason in one line.

Also the two text helpers every layer shares: :func:`exception_line` (an exception as one
line) and :func:`to_stderr` (a message line on standard error).

Lowest layer: no torch, no numpy; every other layer may import it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable way is to set it and put it back
    os.umask(mask)
    return mask


class WriteError(RuntimeError):
    """A file could not be written (disk full, file too large, I/O error, no permission).

    The message names the file and the reason; whatever the file held before is intact.
    ``path`` and ``errno`` are kept for callers that add what re-running does.
    """

    def __init__(self, message: str, path: str | None = None, errno_: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno_

    @classmethod
    def from_oserror(cls, path: str | Path, exc: OSError) -> "WriteError":
        why = exc.strerror or str(exc) or type(exc).__name__
        code = errno.errorcode.get(exc.errno or -1)
        return cls(f"could not write {path}: {why}{f' ({code})' if code else ''}", str(path), exc.errno)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (not every file system can: then nothing)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path``.

    Args:
        path: the target file (its directory is created).
        mode: ``"w"`` (text, UTF-8) or ``"wb"`` (bytes).
    Yields:
        The open file. On an exception the temporary file is removed and ``path`` is untouched.
    Raises:
        WriteError: an ``OSError`` while creating, writing, syncing or renaming the file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError.from_oserror(target, exc) from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())  # a full disk is often reported here, not at write()
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise WriteError.from_oserror(target, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (mode from the umask)."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (mode from the umask)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def sha256_bytes(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes (read in chunks) as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=32)
def _sha256_version(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path, 1 << 22)


def sha256_file_once(path: str | Path) -> str:
    """:func:`sha256_file` computed once per process per file version (path, size, mtime):
    for weights files checked on every load."""
    st = os.stat(path)
    return _sha256_version(str(path), st.st_size, st.st_mtime_ns)


def nan_to_none(x: Any) -> Any:
    """NaN/inf floats -> None, recursively (JSON has no NaN)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [nan_to_none(v) for v in x]
    return x


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically; NaN/inf become null."""
    return write_text(path, json.dumps(nan_to_none(data), indent=2) + "\n")


__all__ = [
    "WriteError",
    "atomic_write",
    "current_umask",
    "nan_to_none",
    "sha256_bytes",
    "sha256_file",
    "write_bytes",
    "write_json",
    "write_text",
]


def exception_line(exc: BaseException, *, with_type: bool = True) -> str:
    """An exception as one short line: its type (unless ``with_type`` is False) and the first
    line of its message; the type alone when the message is empty."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text[0]}" if with_type else text[0]


def to_stderr(message: str) -> None:
    """``message`` as one line on standard error (flushed: it interleaves with progress)."""
    import sys

    print(message, file=sys.stderr, flush=True)
