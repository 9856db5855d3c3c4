"""One writer per output: a lock taken before anything is written.

``train``, ``experiment``, ``import`` and ``extract`` hold :func:`writer_lock` on their
output for as long as they write it. The lock is a ``filelock`` lock (``flock`` on Linux and
macOS): the kernel releases it when its process ends, however it ends, so a lock left by a
killed process is free again at once and a later writer takes it over. Beside the lock file a
small JSON file names the holder (pid, host, start time, command); a second writer is refused
with :class:`LockedError`, one line naming the holder, and when that holder is a process of
this host that has ended, it says so (a process it started still holds the lock).

Files:

- a run directory ``DIR``: ``DIR/.lock`` and ``DIR/.lock.holder.json``;
- a single output file ``OUT`` (``extract``): ``.OUT.lock`` and ``.OUT.lock.holder.json``
  beside it.

Lowest layer with :mod:`mmlatch.files`: no torch, no numpy.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmlatch.files import WriteError, write_json

LOCK_NAME = ".lock"
HOLDER_SUFFIX = ".holder.json"

#: locks this process holds: (lock file, thread) -> [FileLock, depth]; nested takes share one
_HELD: dict[tuple[str, int], list[Any]] = {}
_GUARD = threading.Lock()


#: the files every finished run directory has (what ``evaluate``/``predict``/``analyze`` read)
RUN_FILES: tuple[str, ...] = ("model.json", "model.safetensors", "config.yaml")


class LockedError(RuntimeError):
    """Another process is writing this output; the message names it."""


def lock_files(target: str | Path, *, directory: bool = True) -> tuple[Path, Path]:
    """(lock file, holder file) of a run directory, or of a single output file."""
    target = Path(target)
    lock = target / LOCK_NAME if directory else target.with_name(f".{target.name}.lock")
    return lock, lock.with_name(lock.name + HOLDER_SUFFIX)


def _is_distributed_worker() -> bool:
    """A non-zero rank of a distributed run (its rank zero holds the lock for it)."""
    return any(os.environ.get(k, "0") not in ("", "0") for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


def read_holder(holder_file: Path) -> dict[str, Any] | None:
    """The holder information, or None when absent or unreadable."""
    try:
        info = json.loads(holder_file.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return info if isinstance(info, dict) else None


def describe_holder(info: dict[str, Any] | None) -> str:
    """``pid 123 on host h since 2026-12-05 08:10:02 UTC (mmlatch train ...)``."""
    if not info:
        return "another process (it has not said which yet)"
    text = f"pid {info.get('pid')} on host {info.get('host')} since {info.get('since')}"
    if info.get("command"):
        text += f" ({info['command']})"
    if info.get("host") == socket.gethostname() and not pid_alive(int(info.get("pid") or 0)):
        text += "; that process has ended, but a process it started still holds the lock"
    return text


def _holder_info() -> dict[str, Any]:
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else []
    command = " ".join(argv)
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": command[:200] + ("..." if len(command) > 200 else ""),
    }


def _refusal(target: Path, holder_file: Path, advice: str) -> LockedError:
    info = read_holder(holder_file)
    for _ in range(10):  # a writer that has just taken the lock writes its name a moment later
        if info and not (info.get("host") == socket.gethostname() and not pid_alive(int(info.get("pid") or 0))):
            break
        time.sleep(0.1)
        info = read_holder(holder_file)
    return LockedError(f"{target} is being written by {describe_holder(info)}: {advice}")


def _created_dirs(target: Path) -> list[Path]:
    """The directories ``target.mkdir(parents=True)`` would create, deepest first."""
    missing = []
    p = target
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing


@contextlib.contextmanager
def writer_lock(
    target: str | Path, *, directory: bool = True, advice: str = "wait for it to finish, or use another --out"
) -> Iterator[None]:
    """Hold the one-writer lock of ``target`` (a run directory, or one output file).

    Nested takes in one thread share the lock. A directory this call creates is removed
    again when the block fails having written nothing but the lock.

    Raises:
        LockedError: another process holds it (the message names the holder).
        WriteError: the directory cannot be created or the lock file not opened.
    """
    import filelock

    target = Path(target)
    if _is_distributed_worker():
        yield
        return
    lock_file, holder_file = lock_files(target, directory=directory)
    key = (os.path.abspath(lock_file), threading.get_ident())
    with _GUARD:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield
        finally:
            with _GUARD:
                held[1] -= 1
        return
    created = _created_dirs(lock_file.parent)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(lock_file), timeout=0)
        lock.acquire()
    except filelock.Timeout:
        raise _refusal(target, holder_file, advice) from None
    except OSError as exc:
        raise WriteError.from_oserror(lock_file, exc) from None
    with _GUARD:
        _HELD[key] = [lock, 1]
    failed = False
    try:
        with contextlib.suppress(WriteError):  # a full disk: the lock works without the name
            write_json(holder_file, _holder_info())
        yield
    except BaseException:
        failed = True
        raise
    finally:
        with _GUARD:
            _HELD.pop(key, None)
        holder_file.unlink(missing_ok=True)
        try:
            if failed and created and _only_lock_files(lock_file.parent, lock_file, holder_file):
                lock_file.unlink(missing_ok=True)
                for d in created:
                    with contextlib.suppress(OSError):
                        d.rmdir()
        finally:
            lock.release()


def _only_lock_files(folder: Path, *ours: Path) -> bool:
    names = {p.name for p in ours}
    try:
        return all(p.name in names for p in folder.iterdir())
    except OSError:
        return False


def is_locked(target: str | Path, *, directory: bool = True) -> str | None:
    """Who writes ``target`` now (a line naming the holder), or None when nobody does."""
    import filelock

    lock_file, holder_file = lock_files(target, directory=directory)
    if not lock_file.exists():
        return None
    key = (os.path.abspath(lock_file), threading.get_ident())
    if key in _HELD:
        return "this process"
    lock = filelock.FileLock(str(lock_file), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return describe_holder(read_holder(holder_file))
    except OSError:
        return None
    lock.release()
    return None


__all__ = ["LockedError", "describe_holder", "is_locked", "lock_files", "pid_alive", "read_holder", "writer_lock"]
