"""Load pickles from the internet without running their code.

A pickle names Python callables (``module.name`` globals) that ``pickle.load`` imports and
calls; a crafted file can name ``os.system`` or ``builtins.open``. :func:`safe_load_pickle`
uses an unpickler whose ``find_class`` admits only what numpy arrays, numpy dtypes/scalars and
plain containers need:

- numpy array reconstruction: ``numpy(._)core.multiarray._reconstruct``,
  ``numpy(._)core.numeric._frombuffer`` (protocol 5), ``numpy.ndarray``, ``numpy.dtype``;
- numpy scalars: ``numpy(._)core.multiarray.scalar``;
- containers older protocols build by calling their class: ``builtins.set``,
  ``builtins.frozenset``, ``builtins.bytearray``, ``collections.OrderedDict``, and
  ``_codecs.encode`` (how protocols 0-2 store ``bytes``).

Dicts, lists, tuples, str, bytes, numbers, None and booleans have their own opcodes and need
no global. Every other global is refused with a :class:`DataError` naming the file and the
refused ``module.name``, before anything is called. Both the ``numpy.core`` (numpy 1.x) and
``numpy._core`` (numpy 2.x) spellings are accepted and resolved to whatever this numpy has.
Python 2 pickles are read with ``encoding="latin1"`` as numpy recommends.
"""

from __future__ import annotations

import collections
import importlib
import os
import pickle
from typing import Any

from mmlatch.data.dataset import DataError

_NUMPY_CORE = {
    ("multiarray", "_reconstruct"),
    ("multiarray", "scalar"),
    ("numeric", "_frombuffer"),
}
_PLAIN: dict[tuple[str, str], Any] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "bytearray"): bytearray,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


def _numpy_core_attr(submodule: str, name: str) -> Any:
    """``numpy._core.<submodule>.<name>`` on numpy 2, ``numpy.core...`` on numpy 1."""
    for base in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{base}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise AttributeError(f"numpy has no {submodule}.{name}")


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allowed globals (see module docstring)."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        import numpy as np

        if module in (
            "numpy.core.multiarray",
            "numpy._core.multiarray",
            "numpy.core.numeric",
            "numpy._core.numeric",
        ):
            sub = module.rsplit(".", 1)[1]
            if (sub, name) in _NUMPY_CORE:
                return _numpy_core_attr(sub, name)
        elif module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        elif module == "_codecs" and name == "encode":
            import _codecs

            return _codecs.encode
        elif (module, name) in _PLAIN:
            return _PLAIN[(module, name)]
        raise DataError(
            f"{self._source}: refused to load the pickle: it references {module}.{name}, "
            f"which is not a numpy array/dtype/scalar or plain container (a pickle can run "
            f"code when loaded, so only those are admitted)"
        )


def safe_load_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` admitting only numpy arrays, dtypes, scalars and plain containers.

    Args:
        path: a pickle file (e.g. MulT's ``mosi_data.pkl`` or MMSA's ``aligned_50.pkl``).
    Returns:
        The unpickled object (typically a dict of dicts of numpy arrays).
    Raises:
        DataError: missing/unreadable file, a refused global (naming it), or a truncated or
            corrupt pickle.
    """
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DataError(f"{path}: cannot open pickle: {e.strerror or e}") from e
    with f:
        try:
            return _RestrictedUnpickler(f, str(path)).load()
        except DataError:
            raise
        except MemoryError:
            raise
        except Exception as e:  # EOFError, UnpicklingError, ValueError... from bad bytes
            if isinstance(e, EOFError) or "truncated" in str(e):
                raise DataError(f"{path}: truncated pickle (the file ends early)") from e
            raise DataError(
                f"{path}: not a valid pickle or corrupt: {type(e).__name__}: {e}"
            ) from e


__all__ = ["safe_load_pickle"]
