"""Lightning checkpoints written atomically, with their SHA-256 recorded.

:class:`AtomicCheckpointIO` serialises a checkpoint in memory, writes it to a temporary file
beside its target, ``fsync``s it and renames it over the target
(:func:`mmlatch.files.write_bytes`): a full disk, a file-size limit or a kill never leaves a
half checkpoint, and ``checkpoints/last.ckpt`` is always a complete earlier epoch.

``checkpoints/checksums.json`` maps each checkpoint's name to the SHA-256 values it may have:
before a write, the new value and the one of the file on disk now; after the write, the new
one alone. Whether the process dies before, during or after the rename, the file on disk is
one of the recorded values, so :func:`check_checkpoint` refuses only a file that changed
after it was written (flipped bits, a partial copy). Runs from before this file existed
have no record and load as they are.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from mmlatch.files import WriteError, sha256_bytes, sha256_file, write_json

CHECKSUMS = "checksums.json"


class ChecksumError(RuntimeError):
    """A stored file's bytes differ from the SHA-256 recorded when it was written."""


def read_checksums(folder: Path) -> dict[str, list[str]]:
    """``folder/checksums.json`` (empty when absent).

    Raises:
        ChecksumError: the record itself is unreadable.
    """
    path = folder / CHECKSUMS
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ChecksumError(f"{path}: not a readable checksum record ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(h, str) for h in v) for v in data.values()
    ):
        raise ChecksumError(f"{path}: not a checksum record (expected name -> list of SHA-256)")
    return data


def check_checkpoint(path: str | Path) -> str | None:
    """Compare a checkpoint with its recorded SHA-256.

    Returns:
        None when it matches, "no stored hash" when nothing was recorded for it.
    Raises:
        ChecksumError: the bytes differ from every recorded value (the message names the file).
    """
    path = Path(path)
    known = read_checksums(path.parent).get(path.name)
    if not known:
        return "no stored hash"
    if sha256_file(path) not in known:
        raise ChecksumError(
            f"{path}: SHA-256 differs from the one recorded when it was written "
            f"(the file changed afterwards: flipped bits or a partial copy)"
        )
    return None


def _record(folder: Path, name: str, values: list[str] | None) -> None:
    data = read_checksums(folder) if (folder / CHECKSUMS).is_file() else {}
    if values:
        data[name] = values
    else:
        data.pop(name, None)
    write_json(folder / CHECKSUMS, data)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``torch.save`` checkpoints, written atomically and checksummed."""

    def __init__(self) -> None:
        super().__init__()
        self._written: dict[str, str] = {}  # path -> SHA-256 this object wrote there (no re-read)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        target = Path(path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        data = buffer.getvalue()
        new = sha256_bytes(data)
        old = None
        if target.is_file():
            old = self._written.get(str(target)) or sha256_file(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        _record(target.parent, target.name, [new] + ([old] if old and old != new else []))
        try:
            from mmlatch.files import write_bytes

            write_bytes(target, data)
        except WriteError:
            try:  # best effort: the record still accepts the old file if this fails too
                _record(target.parent, target.name, [old] if old else None)
            except (WriteError, ChecksumError):
                pass
            raise
        self._written[str(target)] = new
        _record(target.parent, target.name, [new])

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        check_checkpoint(path)
        if map_location is None:
            return super().load_checkpoint(path, weights_only=weights_only)
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)

    def remove_checkpoint(self, path: Any) -> None:
        super().remove_checkpoint(path)
        target = Path(path)
        self._written.pop(str(target), None)
        if (target.parent / CHECKSUMS).is_file():
            try:  # a record of a file that is gone does no harm
                _record(target.parent, target.name, None)
            except (WriteError, ChecksumError):
                pass


__all__ = ["AtomicCheckpointIO", "CHECKSUMS", "ChecksumError", "check_checkpoint", "read_checksums"]
