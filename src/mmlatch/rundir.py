"""The run directory: its layout, saving and loading its files, its resume state, one writer
at a time (the lock) and its integrity (the weights' SHA-256).

Layout of a run directory (written by ``mmlatch train``, ``mmlatch import``):

- ``config.yaml``: the fully resolved training config;
- ``model.json``: what rebuilds the model (name, builder arguments, modality dims, task) and
  ``weights_sha256``, the SHA-256 of ``model.safetensors``, checked on every load;
- ``model.safetensors``: the best weights (what ``evaluate``/``predict`` load);
- ``checkpoints/best.ckpt``, ``checkpoints/last.ckpt`` (Lightning, with their SHA-256 in
  ``checkpoints/checksums.json``): what resuming reads;
- ``log/metrics.csv``, ``metrics.json``, ``timing.json``, ``environment.json``.

Every file is written atomically (:mod:`mmlatch.files`), the weights before the
``model.json`` that names their hash.

One writer per output: a lock taken before anything is written.

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

Low layer, beside :mod:`mmlatch.data`: imports only :mod:`mmlatch.files` (torch and
safetensors inside the functions that need them).
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

from mmlatch.files import WriteError, exception_line, sha256_bytes, write_bytes, write_json

LOCK_NAME = ".lock"
HOLDER_SUFFIX = ".holder.json"

#: locks this process holds: (lock file, thread) -> [FileLock, depth]; nested takes share one
_HELD: dict[tuple[str, int], list[Any]] = {}
_GUARD = threading.Lock()


CONFIG = "config.yaml"
MODEL_JSON = "model.json"
WEIGHTS = "model.safetensors"
METRICS = "metrics.json"
TIMING = "timing.json"
ENVIRONMENT = "environment.json"
EPOCH_LOG = "log/metrics.csv"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "checkpoints/last.ckpt"
BEST_CHECKPOINT = "checkpoints/best.ckpt"
#: the files every finished run directory has (what ``evaluate``/``predict``/``analyze`` read)
RUN_FILES: tuple[str, ...] = (MODEL_JSON, WEIGHTS, CONFIG)


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


# ----------------------------------------------------------------------------- run files


class RunError(RuntimeError):
    """A run directory is missing or incomplete; the message names the file."""


def fresh_start(out: Path) -> None:
    """Remove what a previous run in ``out`` left that a new run would not overwrite at once."""
    for old in (out / "checkpoints").glob("*.ckpt") if (out / "checkpoints").is_dir() else []:
        old.unlink()
    (out / "checkpoints" / "checksums.json").unlink(missing_ok=True)
    (out / "metrics.json").unlink(missing_ok=True)


def write_failure(exc: WriteError, out: Path) -> str:
    """One line: what could not be written, where, why, and that re-running resumes."""
    name = Path(exc.path or "").name
    what = {
        "last.ckpt": "the last checkpoint", "best.ckpt": "the best checkpoint",
        "checksums.json": "the checkpoint checksums", "model.safetensors": "the best weights",
        "metrics.json": "the metrics", "metrics.csv": "the epoch log", "timing.json": "the timing",
        "model.json": "the model description", "config.yaml": "the run config",
        "environment.json": "the environment record",
    }.get(name, "a file of the run")
    last = out / "checkpoints" / "last.ckpt"
    resume_from = ""
    if last.is_file():
        with contextlib.suppress(Exception):
            import torch

            epoch = int(torch.load(last, map_location="cpu", weights_only=True).get("epoch", -1)) + 1
            resume_from = f" (checkpoints/last.ckpt holds epoch {epoch})"
    return (
        f"{str(exc).replace('could not write ', f'could not write {what}: ', 1)}; "
        f"files saved before are intact: free space (or fix the permission) and re-run the same "
        f"command to resume{resume_from}"
    )


def read_model_json(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``model.json``; RunError naming the file when absent or malformed."""
    path = Path(run_dir) / "model.json"
    if not path.is_file():
        raise RunError(f"run directory {str(run_dir)!r} has no model.json: is it a finished run?")
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: not valid JSON ({exception_line(exc)})") from None
    missing = [k for k in ("model", "model_args", "modality_dims", "task") if not isinstance(spec, dict) or k not in spec]
    if missing:
        raise RunError(f"{path}: not a model description (missing {missing})")
    return spec


def check_weights(weights_file: Path, blob: bytes, spec: dict[str, Any]) -> str | None:
    """Compare the weights' bytes with ``weights_sha256`` of model.json.

    Returns:
        None when they match, "no stored hash" for runs written before hashes were stored.
    Raises:
        RunError: they differ (the message names the file).
    """
    stored = spec.get("weights_sha256")
    if not stored:
        return "no stored hash"
    if sha256_bytes(blob) != stored:
        raise RunError(
            f"{weights_file}: SHA-256 differs from the one model.json recorded when it was written "
            f"(the file changed afterwards: flipped bits, a partial copy or another run's weights)"
        )
    return None


def require_run_files(run_dir: str | Path, names: tuple[str, ...] = RUN_FILES) -> Path:
    """``run_dir`` as a Path; RunError naming the first of ``names`` (default: the files of
    a finished run) it lacks."""
    run = Path(run_dir)
    for name in names:
        if not (run / name).is_file():
            raise RunError(f"run directory {str(run)!r} has no {name}: is it a finished run?")
    return run


def save_weights(run_dir: str | Path, state_dict: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Write ``model.safetensors`` then ``model.json`` (``spec`` plus the weights' SHA-256),
    both atomically, the weights first so a model.json never names weights not yet written.

    Returns:
        The ``model.json`` content written.
    """
    from safetensors.torch import save as save_safetensors

    run = Path(run_dir)
    blob = save_safetensors({k: v.contiguous() for k, v in state_dict.items()})
    write_bytes(run / WEIGHTS, blob)
    spec = {**spec, "weights_sha256": sha256_bytes(blob)}
    write_json(run / MODEL_JSON, spec)
    return spec


def read_weights(run_dir: str | Path, spec: dict[str, Any]) -> dict[str, Any]:
    """A run's ``model.safetensors`` as a state dict, checked against ``spec``'s SHA-256.

    Raises:
        RunError: unreadable, truncated or changed since ``model.json`` was written.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    weights_file = Path(run_dir) / WEIGHTS
    try:
        blob = weights_file.read_bytes()
        weights = load_safetensors(blob)
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunError(f"{weights_file}: not a readable safetensors file, truncated or corrupt ({exception_line(exc)})") from None
    check_weights(weights_file, blob, spec)
    return weights


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """A finished run's ``metrics.json``."""
    return json.loads((Path(run_dir) / METRICS).read_text())


def previous_seconds(run_dir: str | Path) -> float:
    """Training seconds an interrupted run already spent (``timing.json``), else 0."""
    timing = Path(run_dir) / TIMING
    return float(json.loads(timing.read_text())["seconds"]) if timing.is_file() else 0.0


def resume_state(run_dir: str | Path) -> str:
    """What a directory holds for ``train``: ``finished`` (config and metrics), ``unfinished``
    (config and ``checkpoints/last.ckpt``: resumable) or ``empty`` (nothing to resume)."""
    run = Path(run_dir)
    if not (run / CONFIG).is_file():
        return "empty"
    if (run / METRICS).is_file():
        return "finished"
    return "unfinished" if (run / LAST_CHECKPOINT).is_file() else "empty"


__all__ = [
    "RUN_FILES",
    "LockedError",
    "RunError",
    "check_weights",
    "describe_holder",
    "fresh_start",
    "is_locked",
    "lock_files",
    "pid_alive",
    "previous_seconds",
    "read_holder",
    "read_metrics",
    "read_model_json",
    "read_weights",
    "require_run_files",
    "resume_state",
    "save_weights",
    "write_failure",
    "writer_lock",
]
