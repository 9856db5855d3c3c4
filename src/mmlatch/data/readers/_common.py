"""Helpers shared by the readers: padding removal, non-finite handling, checks, HDF5 access.

Padding: every reader hands :class:`~mmlatch.data.dataset.Split` end-padded arrays, so a
file's own padding is turned into ``lengths`` here. A padding step is a step whose features
are all zero. Where the modalities of a file share their sequence length they are taken to be
word-aligned and padding is decided jointly (a step is padding only when it is zero in every
modality), so step ``t`` stays word ``t`` in all modalities and all modalities get the same
length; a zero row inside the valid region (e.g. a word with no detected face) is kept.
Valid steps are moved to the front of each row in place, one row at a time, so no second
copy of a dataset is ever made.

Non-finite values (NaN, +inf, -inf) are counted per split and modality before padding is
decided (they are real, if broken, data) and then replaced by 0 or reported as an error.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mmlatch.data.dataset import DataError, TaskSpec

PadSide = Literal["front", "end", "both"]
NonfinitePolicy = Literal["zero", "error"]

#: Rows processed at a time by the chunked scans below (bounds temporary memory).
_CHUNK_ROWS = 1024

SENTIMENT = TaskSpec()


def check_policy(on_nonfinite: str) -> NonfinitePolicy:
    """Validate an ``on_nonfinite`` option value."""
    if on_nonfinite not in ("zero", "error"):
        raise DataError(f"on_nonfinite must be 'zero' or 'error', got {on_nonfinite!r}")
    return on_nonfinite  # type: ignore[return-value]


class NonfiniteCounter:
    """Counts NaN/inf feature values per split and modality and applies the policy.

    Args:
        policy: ``"zero"`` replaces them by 0 (one warning with all counts at the end),
            ``"error"`` raises a DataError naming file, split, modality and count.
        source: what is being read, for the warning.
    """

    def __init__(self, policy: str, source: str | os.PathLike[str]) -> None:
        self.policy = check_policy(policy)
        self.source = str(source)
        self.counts: dict[str, dict[str, int]] = {}

    def count(
        self, x: np.ndarray, *, split: str, modality: str, file: str | os.PathLike[str]
    ) -> int:
        """Count non-finite values of ``x`` (any shape), add them up, raise under ``error``."""
        n = count_nonfinite(x)
        per = self.counts.setdefault(split, {})
        per[modality] = per.get(modality, 0) + n
        if n and self.policy == "error":
            raise DataError(
                f"{file}: split {split!r}, modality {modality!r}: {n} non-finite feature "
                f"values (NaN/inf); use on_nonfinite='zero' (--on-nonfinite zero) to replace "
                f"them by 0"
            )
        return n

    def finish(self) -> dict[str, dict[str, int]]:
        """Emit the summary warning (when anything was replaced) and return the counts."""
        found = {f"{s}/{m}": n for s, per in self.counts.items() for m, n in per.items() if n}
        if found:
            detail = ", ".join(f"{k}={v}" for k, v in found.items())
            warnings.warn(
                f"{self.source}: replaced {sum(found.values())} non-finite feature values "
                f"(NaN/inf) by 0 ({detail})",
                stacklevel=3,
            )
        return self.counts


def count_nonfinite(x: np.ndarray) -> int:
    """Number of NaN/inf entries of a float array, scanned in chunks along the first axis."""
    if x.dtype.kind not in "fc" or x.size == 0:
        return 0
    if x.ndim == 0:
        return int(not np.isfinite(x))
    return sum(
        int(np.count_nonzero(~np.isfinite(x[i : i + _CHUNK_ROWS])))
        for i in range(0, x.shape[0], _CHUNK_ROWS)
    )


def zero_nonfinite(x: np.ndarray) -> None:
    """Replace NaN/inf by 0 in place, in row chunks."""
    if x.dtype.kind not in "fc":
        return
    for i in range(0, x.shape[0], _CHUNK_ROWS):
        np.nan_to_num(x[i : i + _CHUNK_ROWS], copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def nonzero_steps(x: np.ndarray) -> np.ndarray:
    """(N, L, F) -> (N, L) bool, True where a step has any non-zero (or non-finite) value."""
    out = np.empty(x.shape[:2], dtype=bool)
    for i in range(0, x.shape[0], _CHUNK_ROWS):
        np.any(x[i : i + _CHUNK_ROWS] != 0, axis=2, out=out[i : i + _CHUNK_ROWS])
    return out


def _span(mask: np.ndarray, side: PadSide) -> tuple[np.ndarray, np.ndarray]:
    """First valid step and length per row of a (N, L) mask of non-padding steps."""
    n, length = mask.shape
    has = mask.any(axis=1)
    first = np.where(has, np.argmax(mask, axis=1), 0)
    last_plus_one = np.where(has, length - np.argmax(mask[:, ::-1], axis=1), 1)
    if side == "front":
        start, stop = first, np.full(n, length)
    elif side == "end":
        start, stop = np.zeros(n, dtype=np.int64), last_plus_one
    else:
        start, stop = first, last_plus_one
    # an all-zero row keeps one (zero) step
    start = np.where(has, start, 0)
    lengths = np.where(has, stop - start, 1)
    return start.astype(np.int64), lengths.astype(np.int64)


def shift_to_front(x: np.ndarray, start: np.ndarray, lengths: np.ndarray) -> None:
    """Move ``x[i, start[i]:start[i]+lengths[i]]`` to the front of row ``i``, zeros after.

    In place, one row at a time (numpy copies overlapping slices correctly), so at most one
    row is ever duplicated.
    """
    for i in np.flatnonzero(start > 0):
        s, n = int(start[i]), int(lengths[i])
        x[i, :n] = x[i, s : s + n]
        x[i, n:] = 0


def strip_padding(
    features: dict[str, np.ndarray],
    side: PadSide,
    *,
    explicit: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Turn a file's zero-row padding into lengths, moving valid steps to the front in place.

    Args:
        features: modality -> (N, L_k, F_k) float32 arrays, modified in place.
        side: where the file pads: ``front`` (MulT), ``end`` (MMSA) or ``both`` (MFN files
            pad at the front in some datasets and at the end in others).
        explicit: modality -> (N,) lengths given by the file; those modalities are taken as
            end-padded and are not scanned.
    Returns:
        modality -> (N,) int64 lengths in [1, L_k].
    """
    explicit = dict(explicit or {})
    scan = [m for m in features if m not in explicit]
    lengths: dict[str, np.ndarray] = {}
    seq_lens = {features[m].shape[1] for m in scan}
    if len(scan) > 1 and len(seq_lens) == 1:
        # word-aligned: decide padding jointly so steps stay aligned across modalities
        mask = nonzero_steps(features[scan[0]])
        for m in scan[1:]:
            mask |= nonzero_steps(features[m])
        start, ln = _span(mask, side)
        for m in scan:
            shift_to_front(features[m], start, ln)
            lengths[m] = ln
    else:
        for m in scan:
            start, ln = _span(nonzero_steps(features[m]), side)
            shift_to_front(features[m], start, ln)
            lengths[m] = ln
    for m, ln in explicit.items():
        x = features[m]
        x[np.arange(x.shape[1])[None, :] >= ln[:, None]] = 0  # (N, L) mask: enforce zeros after
        lengths[m] = ln
    return {m: lengths[m] for m in features}


def check_lengths(lengths: np.ndarray, where: str, key: str, seq_len: int, note: str = "") -> np.ndarray:
    """Lengths a file gives (int64 (N,)), checked to lie in [0, ``seq_len``]; 0 becomes 1.

    Raises:
        DataError: a length outside the range (the message names ``where``, ``key`` and
            ``note``, e.g. which modality's sequence length).
    """
    if lengths.size and (lengths.min() < 0 or lengths.max() > seq_len):
        raise DataError(
            f"{where}: key {key!r}: lengths span [{lengths.min()}, {lengths.max()}], outside [0, {seq_len}]{note}"
        )
    return np.maximum(lengths, 1)


def as_float32(x: np.ndarray, *, copy: bool = False) -> np.ndarray:
    """``x`` as a writeable float32 array we may modify in place (copied only when needed)."""
    if copy or x.dtype != np.float32 or not x.flags.writeable:
        return np.array(x, dtype=np.float32)
    return x


def shared_arrays(data: Mapping[str, Any], keys: tuple[str, ...] | list[str]) -> set[int]:
    """Ids of arrays referenced more than once under ``data[split][key]``.

    A pickle can reference one array object from several splits; in-place padding removal
    must copy those, or the second split would see the first one's result.
    """
    counts: dict[int, int] = {}
    for part in data.values():
        if isinstance(part, Mapping):
            for k in keys:
                x = part.get(k)
                if isinstance(x, np.ndarray):
                    for key in {id(x), id(x.base) if x.base is not None else id(x)}:
                        counts[key] = counts.get(key, 0) + 1
    return {k for k, c in counts.items() if c > 1}


def distinct_split_dicts(data: dict[str, Any]) -> None:
    """Give every split its own dict when a pickle references one dict from several splits
    (readers pop arrays out of the split dicts as they take them)."""
    seen: set[int] = set()
    for name, part in list(data.items()):
        if isinstance(part, dict):
            if id(part) in seen:
                data[name] = dict(part)
            seen.add(id(part))


def must_copy(x: np.ndarray, shared: set[int]) -> bool:
    """True when ``x`` (or its base) is in ``shared`` (see :func:`shared_arrays`)."""
    return id(x) in shared or (x.base is not None and id(x.base) in shared)


def require_numeric(x: Any, where: str, key: str) -> np.ndarray:
    """Check that ``x`` is a numeric numpy array (not object/str), else DataError."""
    if not isinstance(x, np.ndarray):
        raise DataError(f"{where}: key {key!r} is a {type(x).__name__}, expected a numpy array")
    if x.dtype.kind not in "fiub":
        raise DataError(f"{where}: key {key!r} has dtype {x.dtype}, expected numbers")
    return x


def check_features(x: Any, where: str, key: str, n: int | None = None) -> np.ndarray:
    """Check a (N, L, F) numeric feature array (optionally with N == n)."""
    x = require_numeric(x, where, key)
    if x.ndim != 3:
        raise DataError(f"{where}: key {key!r} has shape {x.shape}, expected (N, L, F)")
    if n is not None and x.shape[0] != n:
        raise DataError(f"{where}: key {key!r} has {x.shape[0]} samples but the labels have {n}")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"{where}: key {key!r} has shape {x.shape}; L and F must be > 0")
    return x


def check_label_range(labels: np.ndarray, task: TaskSpec, where: str, key: str) -> None:
    """Raise DataError when labels are non-finite or outside ``task.label_range``."""
    if labels.size and not np.isfinite(labels).all():
        raise DataError(f"{where}: key {key!r}: labels contain NaN or inf")
    lr = task.label_range
    if task.kind == "regression" and lr is not None and labels.size:
        lo, hi = float(labels.min()), float(labels.max())
        if lo < lr[0] - 1e-6 or hi > lr[1] + 1e-6:
            raise DataError(
                f"{where}: key {key!r}: labels span [{lo:.3f}, {hi:.3f}], outside the "
                f"expected range [{lr[0]}, {lr[1]}]"
            )


def decode_str(v: Any) -> str:
    """bytes/numpy scalars -> str (UTF-8, undecodable bytes replaced)."""
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).decode("utf-8", errors="replace")
    return str(v)


def ids_from_array(ids: Any, n: int, where: str, key: str = "id") -> list[str]:
    """Sample ids from an id array: (N,) -> as is; (N, k) -> ``first[rest,...]``.

    MulT stores (N, 3) rows ``(video, start, end)``, giving ``video[start,end]``.
    """
    if isinstance(ids, list):
        ids = np.asarray(ids, dtype=object)
    if not isinstance(ids, np.ndarray):
        raise DataError(f"{where}: key {key!r} is a {type(ids).__name__}, expected an array")
    if ids.ndim == 0 or ids.shape[0] != n:
        raise DataError(f"{where}: key {key!r} has shape {ids.shape}, expected ({n}, ...)")
    if ids.ndim == 1:
        return [decode_str(v) for v in ids]
    flat = ids.reshape(n, -1)
    return [
        decode_str(row[0])
        + ("[" + ",".join(decode_str(v) for v in row[1:]) + "]" if len(row) > 1 else "")
        for row in flat
    ]


@contextmanager
def open_h5(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Open an HDF5 file read-only; an unreadable/truncated file becomes a DataError."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {e}") from e
    try:
        yield f
    finally:
        f.close()


@contextmanager
def h5_errors(where: str) -> Iterator[None]:
    """h5py's errors while walking a damaged file (KeyError, OSError, RuntimeError ... from
    flipped bits or a truncation the header did not reveal) -> DataError naming ``where``."""
    try:
        yield
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, IndexError, AttributeError) as e:
        text = str(e).strip().splitlines()
        raise DataError(
            f"{where}: could not be read (a corrupt HDF5 file?): {type(e).__name__}: {text[0].strip(chr(39)) if text else ''}"
        ) from e


def read_h5(dset: Any, file: str | os.PathLike[str], dtype: Any = None) -> np.ndarray:
    """Read a whole h5py dataset (optionally converting on read); errors -> DataError."""
    try:
        if dtype is not None:
            return np.asarray(dset.astype(dtype)[()])
        return np.asarray(dset[()])
    except (OSError, ValueError, TypeError) as e:
        raise DataError(f"{file}: key {dset.name!r} could not be read (corrupt?): {e}") from e


def path_name(path: str | os.PathLike[str]) -> str:
    """A dataset name from a path: file stem or directory name."""
    p = Path(path)
    return p.stem if p.is_file() else p.name
