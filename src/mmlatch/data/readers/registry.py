"""Registered readers: a new file format is one file with one ``@register_reader``.

The registry imports no reader; a reader module imports it and registers itself::

    from mmlatch.data.readers.registry import register_reader

    @register_reader("toy", detect=lambda path: path.suffix == ".toy", options=("scale",))
    def read_toy(path: Path, *, on_nonfinite: str = "zero", scale: float = 1.0) -> MultimodalDataset:
        ...

:func:`mmlatch.data.readers.read_path` (so ``load_dataset``, ``--data`` and every command)
then reads such files: by ``--format toy``, or detected by content: registered readers'
``detect(path)`` are asked first, in registration order, before the built-in formats
(MulT/MMSA pickles, .csd and MFN directories, the own .npz), whose detection is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mmlatch.data.dataset import DataError, MultimodalDataset

ReadFn = Callable[..., MultimodalDataset]

#: names of the built-in formats and their aliases (read by :func:`mmlatch.data.readers.read_path`)
BUILTIN_NAMES = frozenset({"mult", "mmsa", "csd", "mfn", "own", "npz", "mmlatch", "pickle", "synthetic"})


@dataclass(frozen=True)
class Reader:
    """A registered format.

    Attributes:
        name: the format's name (``--format NAME``).
        read: ``read(path, *, on_nonfinite, **options) -> MultimodalDataset``; raises
            :class:`DataError` naming file and key for bad input.
        detect: ``detect(path) -> bool``, a cheap look at the path and its first bytes; None:
            read only when asked for by name.
        options: the reader options it takes besides ``on_nonfinite``.
    """

    name: str
    read: ReadFn
    detect: Callable[[Path], bool] | None = None
    options: frozenset[str] = frozenset()


_READERS: dict[str, Reader] = {}


def register_reader(
    name: str, *, detect: Callable[[Path], bool] | None = None, options: Iterable[str] = ()
) -> Callable[[ReadFn], ReadFn]:
    """Decorator registering ``read`` as the reader of format ``name`` (see the module docstring).

    Raises:
        ValueError: ``name`` is taken (registered, or a built-in format).
    """

    def wrap(read: ReadFn) -> ReadFn:
        if name in _READERS or name in BUILTIN_NAMES:
            raise ValueError(f"data format {name!r} is registered twice")
        _READERS[name] = Reader(name, read, detect, frozenset(options))
        return read

    return wrap


def unregister_reader(name: str) -> None:
    """Remove a registered format (tests register toy ones)."""
    _READERS.pop(name, None)


def registered_formats() -> list[str]:
    """Names of the registered (non built-in) formats, in registration order."""
    return list(_READERS)


def get_reader(name: str) -> Reader | None:
    """The registered reader of ``name``, or None."""
    return _READERS.get(name)


def detect_registered(path: Path) -> str | None:
    """The first registered format whose ``detect`` recognises ``path``, or None."""
    for reader in _READERS.values():
        if reader.detect is None:
            continue
        try:
            if reader.detect(path):
                return reader.name
        except OSError as exc:
            raise DataError(f"{path}: could not look inside to detect its format ({exc})") from None
    return None


__all__ = [
    "BUILTIN_NAMES",
    "Reader", "detect_registered", "get_reader", "register_reader", "registered_formats", "unregister_reader"]
