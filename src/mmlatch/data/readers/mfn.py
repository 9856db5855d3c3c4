"""MFN HDF5 directories (pliang279/MFN ``new_data/<dataset>/`` and ``data/``).

Layout: one file per split and modality, each holding a single float64 dataset (``d1``, or
``data`` in MOSI's label files): ``audio_<split>.h5`` (N, 20, Fa), ``video_<split>.h5``
(N, 20, Fv), ``text_<split>_emb.h5`` (N, 20, 300), ``y_<split>.h5`` labels.

Choices:

- ``video`` becomes ``visual``; order text, audio, visual. Only modalities with a file in
  every split are kept; the others are dropped with a warning (the released MMMO and YouTube
  have text for valid/test only, so text is dropped there).
- Features are read straight into float32 (no float64 copy). Zero rows are padding; the
  releases pad at the front (POM) or at the end (YouTube), so leading and trailing all-zero
  steps (zero in every kept modality: the files are word-aligned) are both stripped into
  lengths, in place. Zero rows between valid steps are kept.
- Labels (see :func:`infer_mfn_task`): scalar labels under ``data`` or with negative values
  -> sentiment in [-3, 3] (MOSI); scalar labels within 1..5 -> MMMO sentiment, regression
  with ``label_range=(1, 5)``; (N, C) one-hot -> classification over C classes (YouTube:
  negative/neutral/positive), stored as (N, 1) class indices; (N, 17) -> POM, 17-output
  regression in [0, 7] named ``pom_0..pom_16`` (the release documents no trait names; its
  scores are averages of 1..7 / 1..5 ratings, one test value is 0.667); other (N, K) ->
  K-output regression without a range check.
- Ids: ``<dataset>/<split>[<i>]`` (the files hold none).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmlatch.data.dataset import SPLITS, DataError, MultimodalDataset, Split, TaskSpec
from mmlatch.data.readers._common import (
    SENTIMENT,
    NonfiniteCounter,
    h5_errors,
    check_features,
    check_label_range,
    open_h5,
    read_h5,
    strip_padding,
    zero_nonfinite,
)

#: modality -> file name patterns (first existing wins), ``{split}`` substituted
MFN_FILES: dict[str, tuple[str, ...]] = {
    "text": ("text_{split}_emb.h5", "text_{split}.h5"),
    "audio": ("audio_{split}.h5",),
    "visual": ("video_{split}.h5",),
}
YOUTUBE_CLASSES = ("negative", "neutral", "positive")


def _dataset_of(f: Any, file: Path) -> Any:
    """The single data set of an MFN file: ``d1``, ``data`` or the only one there is."""
    import h5py

    for key in ("d1", "data"):
        if key in f and isinstance(f[key], h5py.Dataset):
            return f[key]
    dsets = [k for k in f if isinstance(f[k], h5py.Dataset)]
    if len(dsets) == 1:
        return f[dsets[0]]
    raise DataError(f"{file}: expected one dataset named 'd1' or 'data', found keys {sorted(f)}")


def _read_file(file: Path, dtype: Any = None) -> tuple[np.ndarray, str]:
    with open_h5(file) as f, h5_errors(str(file)):
        d = _dataset_of(f, file)
        if d.dtype.kind not in "fiub":
            raise DataError(f"{file}: key {d.name!r} has dtype {d.dtype}, expected numbers")
        return read_h5(d, file, dtype), d.name.lstrip("/")


def _where(directory: Path, split: str) -> str:
    return f"{directory / f'y_{split}.h5'}, split {split!r}"


def infer_mfn_task(
    labels: dict[str, np.ndarray], keys: dict[str, str], directory: Path
) -> tuple[TaskSpec, dict[str, np.ndarray]]:
    """Infer the task from the raw labels of all splits and convert them.

    Args:
        labels: split -> raw label array as stored, (N,), (N, 1) or (N, K).
        keys: split -> dataset name in the file (``d1``/``data``).
        directory: for messages.
    Returns:
        The task and split -> (N, num_outputs) float32 labels.
    """
    for s, y in labels.items():
        if y.ndim not in (1, 2):
            raise DataError(
                f"{_where(directory, s)}: key {keys[s]!r} has shape {y.shape}, expected (N,) or (N, K)"
            )
        if y.size and not np.isfinite(y).all():
            raise DataError(f"{_where(directory, s)}: key {keys[s]!r}: labels contain NaN or inf")
    # (N,) and (N, 1) are both scalar labels
    shapes = {
        s: () if y.ndim == 1 or y.shape[1:] == (1,) else y.shape[1:] for s, y in labels.items()
    }
    if len(set(shapes.values())) != 1:
        raise DataError(f"{directory}: y_<split>.h5 label shapes differ between splits: {shapes}")
    shape = next(iter(shapes.values()))
    nonempty = [y for y in labels.values() if y.size]
    lo = min((float(y.min()) for y in nonempty), default=0.0)
    hi = max((float(y.max()) for y in nonempty), default=0.0)
    if shape == ():
        out = {s: y.reshape(-1, 1).astype(np.float32) for s, y in labels.items()}
        if "data" in keys.values() or lo < 0:
            task = SENTIMENT
        elif lo >= 1.0 and hi <= 5.0:
            task = TaskSpec(label_range=(1.0, 5.0))  # MMMO sentiment, 1..5
        else:
            raise DataError(
                f"{directory}: scalar labels span [{lo:.3f}, {hi:.3f}]: neither sentiment in "
                f"[-3, 3] (MOSI) nor 1..5 (MMMO)"
            )
        for s, y in out.items():
            check_label_range(y, task, _where(directory, s), keys[s])
        return task, out
    k = int(shape[0])
    onehot = all(
        np.isin(y, (0.0, 1.0)).all() and (y.sum(axis=1) == 1).all() for y in labels.values()
    )
    if onehot and k > 1:
        names = YOUTUBE_CLASSES if k == 3 else tuple(f"class_{i}" for i in range(k))
        task = TaskSpec(kind="classification", num_outputs=k, label_names=names, label_range=None)
        return task, {
            s: np.argmax(y, axis=1).reshape(-1, 1).astype(np.float32) for s, y in labels.items()
        }
    if k == 17:
        task = TaskSpec(
            num_outputs=17, label_names=tuple(f"pom_{i}" for i in range(17)), label_range=(0.0, 7.0)
        )
    else:
        task = TaskSpec(
            num_outputs=k, label_names=tuple(f"label_{i}" for i in range(k)), label_range=None
        )
    out = {s: y.astype(np.float32) for s, y in labels.items()}
    for s, y in out.items():
        check_label_range(y, task, _where(directory, s), keys[s])
    return task, out


def read_mfn_labels(path: str | os.PathLike[str]) -> tuple[TaskSpec, dict[str, np.ndarray]]:
    """Read ``y_<split>.h5`` of every split of an MFN directory and infer the task.

    Returns:
        The task and split -> (N, num_outputs) float32 labels.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise DataError(
            f"{directory}: not a directory (an MFN dataset is a directory of .h5 files)"
        )
    missing = [f"y_{s}.h5" for s in SPLITS if not (directory / f"y_{s}.h5").is_file()]
    if missing:
        raise DataError(f"{directory}: missing label file(s) {missing} (split missing)")
    raw: dict[str, np.ndarray] = {}
    keys: dict[str, str] = {}
    for s in SPLITS:
        raw[s], keys[s] = _read_file(directory / f"y_{s}.h5", np.float64)
    return infer_mfn_task(raw, keys, directory)


def _modality_file(directory: Path, modality: str, split: str) -> Path | None:
    for pattern in MFN_FILES[modality]:
        p = directory / pattern.format(split=split)
        if p.is_file():
            return p
    return None


def read_mfn(
    path: str | os.PathLike[str], *, on_nonfinite: str = "zero", wanted: Sequence[str] | None = None
) -> MultimodalDataset:
    """Read an MFN HDF5 directory.

    Args:
        path: a directory with ``y_<split>.h5`` and ``audio_/video_/text_..._emb`` files.
        on_nonfinite: ``"zero"`` (replace NaN/inf by 0, warn) or ``"error"``.
        wanted: the modalities the caller will keep (None: all): dropping a modality outside
            them is what the caller asked for, so it is not warned about.
    Returns:
        The dataset: (N, 20, F) float32 end-padded features, (N,) lengths per modality
        (equal across modalities), labels as inferred by :func:`infer_mfn_task`.
    """
    directory = Path(path)
    task, labels = read_mfn_labels(directory)
    files = {m: {s: _modality_file(directory, m, s) for s in SPLITS} for m in MFN_FILES}
    kept = [m for m in MFN_FILES if all(files[m].values())]
    partial = {
        m: [s for s, p in files[m].items() if p]
        for m in MFN_FILES
        if m not in kept and any(files[m].values())
    }
    if not kept:
        raise DataError(
            f"{directory}: no modality has a file for every split "
            f"(looked for audio_<split>.h5, video_<split>.h5, text_<split>_emb.h5; partial: {partial})"
        )
    if wanted is not None:
        partial = {m: ss for m, ss in partial.items() if m in wanted}
    if partial:
        detail = "; ".join(f"{m} only in {ss}" for m, ss in partial.items())
        warnings.warn(
            f"{directory}: modalities not present in every split were dropped: {detail}",
            stacklevel=2,
        )
    counter = NonfiniteCounter(on_nonfinite, directory)
    splits: dict[str, Split] = {}
    for s in SPLITS:
        n = labels[s].shape[0]
        features: dict[str, np.ndarray] = {}
        for m in kept:
            file = files[m][s]
            assert file is not None
            x, key = _read_file(file, np.float32)
            check_features(x, f"{file}, split {s!r}", key, n)
            counter.count(x, split=s, modality=m, file=file)
            features[m] = x
        lengths = strip_padding(features, "both")
        for x in features.values():
            zero_nonfinite(x)
        ids = [f"{directory.name}/{s}[{i}]" for i in range(n)]
        splits[s] = Split(features=features, lengths=lengths, labels=labels[s], ids=ids)
    return MultimodalDataset(
        name=directory.name,
        splits=splits,
        task=task,
        source=f"mfn:{directory}",
        nonfinite=counter.finish(),
    )
