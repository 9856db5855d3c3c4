"""MulT pickles: ``mosi_data.pkl``, ``mosei_senti_data.pkl``, ``iemocap_data.pkl``, ``*_noalign``.

Layout: ``{"train"|"valid"|"test": {"text": (N, L, 300), "audio": (N, L, Fa),
"vision": (N, L, Fv), "labels": (N, 1, 1) | (N, 4, 2), "id": (N, 3)}}``, float32, zero rows
as padding at the FRONT.

Choices:

- ``vision`` becomes ``visual``; modality order is text, audio, visual (those present).
- Front padding becomes lengths (valid steps moved to the front in place, see
  :mod:`._common`); when all modalities share L (aligned files) padding is decided jointly.
- Labels: (N, 1, 1), (N, 1) or (N,) -> sentiment regression in [-3, 3]; (N, 4, 2) -> IEMOCAP:
  4 binary tasks (neutral, happy, sad, angry), label = argmax over the last axis, as MulT does.
- Ids: ``id`` (N, 3) rows ``(video, start, end)`` -> ``"video[start,end]"``; (N,) -> as is;
  no ``id`` key -> ``"<split>[<i>]"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.data.dataset import SPLITS, DataError, MultimodalDataset, Split, TaskSpec
from mmlatch.data.readers._common import (
    SENTIMENT,
    NonfiniteCounter,
    as_float32,
    check_features,
    check_label_range,
    distinct_split_dicts,
    ids_from_array,
    must_copy,
    require_numeric,
    shared_arrays,
    strip_padding,
    zero_nonfinite,
)
from mmlatch.data.safe_pickle import safe_load_pickle

#: file key -> modality name, in the modality order used
MULT_MODALITIES: dict[str, str] = {"text": "text", "audio": "audio", "vision": "visual"}
IEMOCAP = TaskSpec(
    kind="multilabel",
    num_outputs=4,
    label_names=("neutral", "happy", "sad", "angry"),
    label_range=None,
)


def _labels(raw: Any, where: str, n: int) -> tuple[np.ndarray, TaskSpec]:
    """MulT labels -> ((N, num_outputs) float32, task)."""
    y = require_numeric(raw, where, "labels")
    if y.shape[:1] != (n,):
        raise DataError(
            f"{where}: key 'labels' has shape {y.shape}, expected ({n}, ...) like the features"
        )
    if y.ndim == 3 and y.shape[1:] == (4, 2):
        if not np.isfinite(y).all():
            raise DataError(f"{where}: key 'labels': labels contain NaN or inf")
        return np.argmax(y, axis=2).astype(np.float32), IEMOCAP  # (N, 4) 0/1
    if y.ndim in (1, 2, 3) and int(np.prod(y.shape[1:])) == 1:
        out = y.reshape(n, 1).astype(np.float32)
        check_label_range(out, SENTIMENT, where, "labels")
        return out, SENTIMENT
    raise DataError(
        f"{where}: key 'labels' has shape {y.shape}; expected (N, 1, 1) sentiment or "
        f"(N, 4, 2) IEMOCAP emotions"
    )


def mult_from_dict(
    data: Any,
    path: str | os.PathLike[str],
    *,
    on_nonfinite: str = "zero",
) -> MultimodalDataset:
    """Build a dataset from an already unpickled MulT dict (consumed: arrays are reused).

    Args:
        data: ``{split: {key: array}}`` as in the module docstring.
        path: the file it came from (for messages and the dataset name).
        on_nonfinite: ``"zero"`` or ``"error"``.
    """
    counter = NonfiniteCounter(on_nonfinite, path)
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: a MulT pickle holds a dict of splits, found {type(data).__name__}"
        )
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise DataError(f"{path}: missing split(s) {missing}; found keys {sorted(map(str, data))}")
    splits: dict[str, Split] = {}
    distinct_split_dicts(data)
    shared = shared_arrays(data, list(MULT_MODALITIES))
    task: TaskSpec | None = None
    for sname in SPLITS:
        where = f"{path}, split {sname!r}"
        part = data[sname]
        if not isinstance(part, dict):
            raise DataError(f"{where}: expected a dict of arrays, found {type(part).__name__}")
        if "labels" not in part:
            raise DataError(f"{where}: missing key 'labels'; found keys {sorted(map(str, part))}")
        keys = [k for k in MULT_MODALITIES if k in part]
        if not keys:
            raise DataError(
                f"{where}: no modality key (text, audio, vision); found keys {sorted(map(str, part))}"
            )
        labels_raw = require_numeric(part["labels"], where, "labels")
        n = labels_raw.shape[0] if labels_raw.ndim else -1
        labels, stask = _labels(labels_raw, where, n)
        if task is not None and stask != task:
            raise DataError(
                f"{where}: labels of shape {labels_raw.shape} differ in kind from the other splits'"
            )
        task = stask
        features: dict[str, np.ndarray] = {}
        for key in keys:
            x = check_features(part.pop(key), where, key, n)  # pop: let the original go
            x = as_float32(x, copy=must_copy(x, shared))
            counter.count(x, split=sname, modality=MULT_MODALITIES[key], file=path)
            features[MULT_MODALITIES[key]] = x
        lengths = strip_padding(features, "front")
        for x in features.values():
            zero_nonfinite(x)
        ids = (
            ids_from_array(part["id"], n, where)
            if "id" in part
            else [f"{sname}[{i}]" for i in range(n)]
        )
        splits[sname] = Split(features=features, lengths=lengths, labels=labels, ids=ids)
    assert task is not None
    return MultimodalDataset(
        name=Path(path).stem,
        splits=splits,
        task=task,
        source=f"mult:{path}",
        nonfinite=counter.finish(),
    )


def read_mult(path: str | os.PathLike[str], *, on_nonfinite: str = "zero") -> MultimodalDataset:
    """Read a MulT pickle with the restricted unpickler.

    Args:
        path: e.g. ``mosi_data.pkl``.
        on_nonfinite: ``"zero"`` (replace NaN/inf by 0, warn) or ``"error"``.
    Returns:
        The dataset: per split (N, L, F) float32 end-padded features, (N,) lengths,
        labels (N, 1) sentiment or (N, 4) IEMOCAP 0/1.
    """
    return mult_from_dict(safe_load_pickle(path), path, on_nonfinite=on_nonfinite)
