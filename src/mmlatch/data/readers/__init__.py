"""Readers for the formats the field's data come in, one module each, behind :func:`read_path`.

- ``mult``: a pickle whose splits have ``labels`` (:mod:`.mult`);
- ``mmsa``: a pickle whose splits have ``regression_labels`` (:mod:`.mmsa`);
- ``csd``: a directory of CMU-MultimodalSDK ``.csd`` files (:mod:`.csd`);
- ``mfn``: a directory with ``y_train.h5``, ``y_valid.h5``, ``y_test.h5`` (:mod:`.mfn`);
- ``own``: a file written by :func:`mmlatch.data.convert.save_dataset` (``mmlatch data
  convert``), recognised by its ``__mmlatch__`` entry.

``npz`` and ``mmlatch`` are accepted as names of ``own``. More formats are added with
:func:`~mmlatch.data.readers.registry.register_reader` (one file, one decorator): detected by
their own ``detect`` before the formats above, or asked for by name. Every reader returns a
:class:`~mmlatch.data.dataset.MultimodalDataset` whose ``source`` is ``"<format>:<path>"``
and whose ``nonfinite`` holds the NaN/inf counts found per split and modality.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmlatch.data.dataset import DataError, MultimodalDataset
from mmlatch.data.readers._common import nonzero_steps, shift_to_front, strip_padding
from mmlatch.data.readers.registry import detect_registered, get_reader, register_reader, registered_formats

FORMATS: tuple[str, ...] = ("mult", "mmsa", "csd", "mfn", "own")
_ALIASES = {"npz": "own", "mmlatch": "own"}
_PICKLE_SUFFIXES = (".pkl", ".pickle")


def is_pickle(path: Path) -> bool:
    """Whether ``path`` is a pickle: by its suffix, else by its first bytes (the PROTO opcode)."""
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5  # PROTO opcode


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name the format of ``path`` (one of :data:`FORMATS`) from the path and a peek inside.

    Pickles are told apart (MulT vs MMSA) only once loaded, so for a pickle this returns
    ``"pickle"``; :func:`read_path` resolves it.
    """
    from mmlatch.data.convert import is_own_file

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    if p.is_dir():
        if any(x.suffix == ".csd" for x in p.iterdir()):
            return "csd"
        if any((p / f"y_{s}.h5").is_file() for s in ("train", "valid", "test")):
            return "mfn"
        raise DataError(
            f"{p}: a directory with neither .csd files (CMU-MultimodalSDK) nor y_train.h5/"
            f"y_valid.h5/y_test.h5 (MFN); pass a pickle, a .csd directory, an MFN directory "
            f"or an mmlatch .npz file"
        )
    if is_own_file(p):
        return "own"
    if p.suffix == ".csd":
        return "csd"
    if is_pickle(p):
        return "pickle"
    if p.suffix == ".npz":
        if not zipfile.is_zipfile(p):
            raise DataError(f"{p}: not a readable .npz (zip) file (truncated or corrupt?)")
        raise DataError(
            f"{p}: an .npz file without the '__mmlatch__' entry: not an mmlatch dataset"
        )
    if p.suffix in (".h5", ".hdf5"):
        raise DataError(
            f"{p}: a single .h5 file; MFN data is read from its directory (y_train.h5, audio_train.h5, ...)"
        )
    raise DataError(
        f"{p}: unknown data format (expected a MulT/MMSA .pkl, a .csd directory, an MFN "
        f"directory or an mmlatch .npz); force one with format= (--format {'|'.join(FORMATS)})"
    )


def _pickle_kind(data: Any, path: Path) -> str:
    if isinstance(data, dict):
        for s in ("train", "valid", "test"):
            part = data.get(s)
            if isinstance(part, dict):
                if "regression_labels" in part:
                    return "mmsa"
                if "labels" in part:
                    return "mult"
                raise DataError(
                    f"{path}, split {s!r}: neither 'labels' (MulT) nor 'regression_labels' "
                    f"(MMSA) among keys {sorted(map(str, part))}"
                )
    keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
    raise DataError(f"{path}: a pickle without train/valid/test split dicts (found {keys})")


def read_path(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    on_nonfinite: str = "zero",
    folds: str | os.PathLike[str] | Mapping[str, Sequence[str]] | None = None,
    keep_sp: bool = False,
    csd_modalities: Mapping[str, str] | None = None,
    modalities: Sequence[str] | None = None,
    **options: Any,
) -> MultimodalDataset:
    """Read a dataset from ``path`` in any supported format.

    Args:
        path: a MulT/MMSA pickle, a .csd directory, an MFN directory or an own-format file.
        format: force a format (``mult``, ``mmsa``, ``csd``, ``mfn``, ``own``/``npz``);
            default: detected.
        on_nonfinite: ``"zero"`` (replace NaN/inf features by 0, warn with counts) or
            ``"error"``.
        folds: .csd only: JSON file (or mapping) of split -> video ids.
        keep_sp: .csd only: keep "sp" pause tokens.
        csd_modalities: .csd only: root name or file stem -> text/audio/visual/labels/words/ignore.
        modalities: the modalities the caller keeps (the caller selects them); MFN
            directories warn about dropped modalities only when one of these is dropped.
        **options: format-specific extras: ``max_len`` (.csd).
    Returns:
        The validated dataset.
    Raises:
        DataError: unknown format, missing path, or any problem with the data (the message
            names file, split and key).
    """
    from mmlatch.data import convert
    from mmlatch.data.readers import csd, mfn, mmsa, mult
    from mmlatch.data.readers._common import check_policy
    from mmlatch.data.safe_pickle import safe_load_pickle

    p = Path(path)
    check_policy(on_nonfinite)
    if format is not None:
        fmt = _ALIASES.get(format, format)
        if fmt not in FORMATS and get_reader(fmt) is None:
            raise DataError(
                f"unknown data format {format!r}; expected one of "
                f"{list(FORMATS) + list(_ALIASES) + registered_formats()}"
            )
        if not p.exists():
            raise DataError(f"{p}: no such file or directory")
    else:
        fmt = (detect_registered(p) if p.exists() else None) or detect_format(p)
    if get_reader(fmt) is not None:
        return _read_registered(p, fmt, on_nonfinite, folds, csd_modalities, options)
    shown = "MulT/MMSA pickle" if fmt == "pickle" else repr(fmt)
    if fmt != "csd" and (folds is not None or csd_modalities):
        raise DataError(
            f"{p}: folds/csd_modalities apply to .csd directories only, this is {shown} data"
        )
    allowed = {"max_len"} if fmt == "csd" else set()
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise DataError(f"reader option(s) {unknown} not understood for {shown} data")
    try:
        if fmt == "csd":
            return csd.read_csd(
                p,
                folds=folds,
                keep_sp=keep_sp,
                csd_modalities=csd_modalities,
                on_nonfinite=on_nonfinite,
                **options,
            )
        if fmt == "mfn":
            return mfn.read_mfn(p, on_nonfinite=on_nonfinite, wanted=modalities)
        if fmt == "own":
            return convert.load_own(p)
        data = safe_load_pickle(p)
        kind = _pickle_kind(data, p) if fmt == "pickle" else fmt
        if kind == "mmsa":
            return mmsa.mmsa_from_dict(data, p, on_nonfinite=on_nonfinite)
        return mult.mult_from_dict(data, p, on_nonfinite=on_nonfinite)
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        # safety net: no bare numpy/h5py trace as the only message
        raise DataError(f"{p}: could not read as {shown} data: {type(e).__name__}: {e}") from e


def _read_registered(
    p: Path, fmt: str, on_nonfinite: str, folds: Any, csd_modalities: Any, options: dict[str, Any]
) -> MultimodalDataset:
    """Read ``p`` with the registered reader of ``fmt`` (its options checked first)."""
    reader = get_reader(fmt)
    assert reader is not None
    if folds is not None or csd_modalities:
        raise DataError(f"{p}: folds/csd_modalities apply to .csd directories only, this is {fmt!r} data")
    unknown = sorted(set(options) - reader.options)
    if unknown:
        raise DataError(f"reader option(s) {unknown} not understood for {fmt!r} data")
    try:
        return reader.read(p, on_nonfinite=on_nonfinite, **options)
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise DataError(f"{p}: could not read as {fmt!r} data: {type(e).__name__}: {e}") from e


__all__ = [
    "FORMATS",
    "detect_format",
    "is_pickle",
    "nonzero_steps",
    "read_path",
    "register_reader",
    "shift_to_front",
    "strip_padding",
]
