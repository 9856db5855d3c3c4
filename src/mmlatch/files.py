"""Writing files: every file the project writes goes through :func:`atomic_write`.

A file is written to a temporary name in its target's directory and renamed over the target,
so a reader (or a killed process) never sees half a file. ``tempfile.mkstemp`` creates its
file with mode 0600 whatever the umask; :func:`atomic_write` sets the mode a plain ``open``
would have given (0666 minus the umask), so colleagues on shared storage can read results
exactly when they can read the CSVs and plots beside them.

Lowest layer: no torch, no numpy; every other layer may import it.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path``.

    Args:
        path: the target file (its directory is created).
        mode: ``"w"`` (text, UTF-8) or ``"wb"`` (bytes).
    Yields:
        The open file. On an exception the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


__all__ = ["atomic_write", "current_umask", "nan_to_none", "write_bytes", "write_json", "write_text"]
