"""MMSA pickles: ``aligned_50.pkl``, ``unaligned_50.pkl`` (the MMSA framework's layout).

Layout: ``{"train"|"valid"|"test": {"raw_text": (N,), "text": (N, 50, 768),
"text_bert": (N, 3, 50), "audio": (N, La, Fa), "vision": (N, Lv, Fv),
"audio_lengths": (N,), "vision_lengths": (N,), "id": (N,) "video$_$clip",
"annotations": (N,), "regression_labels": (N,), "classification_labels": (N,)}}``.
``audio_lengths``/``vision_lengths`` exist only in the unaligned files.

Choices:

- ``vision`` becomes ``visual``; order text, audio, visual (those present).
- Lengths: ``<modality>_lengths`` where given; for text, the attention-mask row of
  ``text_bert`` (row 1) where given; otherwise trailing all-zero steps are padding (MMSA pads
  at the end), decided jointly when the remaining modalities share L. A given length of 0 is
  raised to 1 (an empty sequence keeps one zero step); steps after a given length are zeroed.
- Labels: ``regression_labels`` -> (N, 1) sentiment regression in [-3, 3]. The other label
  keys are not used.
- ``raw_text`` (N,) becomes the split's texts (what ``text_encoder: finetune`` models read);
  ``text_bert`` serves only the text lengths (its token ids belong to BERT-base's vocabulary
  and are cut at 50; the texts are tokenised again by the model's own tokenizer).
- Ids: ``id`` kept as is (``video$_$clip``); no ``id`` key -> ``"<split>[<i>]"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.data.dataset import SPLITS, DataError, MultimodalDataset, Split
from mmlatch.data.readers._common import (
    SENTIMENT,
    NonfiniteCounter,
    as_float32,
    check_features,
    check_label_range,
    check_lengths,
    distinct_split_dicts,
    ids_from_array,
    must_copy,
    require_numeric,
    shared_arrays,
    strip_padding,
    zero_nonfinite,
)
from mmlatch.data.safe_pickle import safe_load_pickle

MMSA_MODALITIES: dict[str, str] = {"text": "text", "audio": "audio", "vision": "visual"}


def _given_lengths(
    part: dict[str, Any], key: str, where: str, n: int, seq_len: int
) -> np.ndarray | None:
    """Lengths the file gives for modality ``key`` (or None)."""
    if key == "text":
        if "text_bert" not in part:
            return None
        tb = require_numeric(part["text_bert"], where, "text_bert")
        if tb.ndim != 3 or tb.shape[0] != n or tb.shape[1] < 2:
            raise DataError(f"{where}: key 'text_bert' has shape {tb.shape}, expected ({n}, 3, L)")
        raw = tb[:, 1, :].sum(axis=1)  # attention mask -> token count
        lkey = "text_bert"
    else:
        lkey = f"{key}_lengths"
        if lkey not in part:
            return None
        raw = require_numeric(part[lkey], where, lkey)
        if raw.shape != (n,):
            raise DataError(f"{where}: key {lkey!r} has shape {raw.shape}, expected ({n},)")
    ln = np.asarray(raw).astype(np.int64)
    return check_lengths(ln, where, lkey, seq_len, f" (the sequence length of {key!r})")


def mmsa_from_dict(
    data: Any, path: str | os.PathLike[str], *, on_nonfinite: str = "zero"
) -> MultimodalDataset:
    """Build a dataset from an already unpickled MMSA dict (consumed: arrays are reused).

    Args:
        data: ``{split: {key: array}}`` as in the module docstring.
        path: the file it came from (messages, dataset name).
        on_nonfinite: ``"zero"`` or ``"error"``.
    """
    counter = NonfiniteCounter(on_nonfinite, path)
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: an MMSA pickle holds a dict of splits, found {type(data).__name__}"
        )
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise DataError(f"{path}: missing split(s) {missing}; found keys {sorted(map(str, data))}")
    splits: dict[str, Split] = {}
    distinct_split_dicts(data)
    shared = shared_arrays(data, list(MMSA_MODALITIES))
    for sname in SPLITS:
        where = f"{path}, split {sname!r}"
        part = data[sname]
        if not isinstance(part, dict):
            raise DataError(f"{where}: expected a dict of arrays, found {type(part).__name__}")
        if "regression_labels" not in part:
            raise DataError(
                f"{where}: missing key 'regression_labels'; found keys {sorted(map(str, part))}"
            )
        y = require_numeric(part["regression_labels"], where, "regression_labels")
        if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != 1):
            raise DataError(f"{where}: key 'regression_labels' has shape {y.shape}, expected (N,)")
        n = y.shape[0]
        labels = y.reshape(n, 1).astype(np.float32)
        check_label_range(labels, SENTIMENT, where, "regression_labels")
        keys = [k for k in MMSA_MODALITIES if k in part]
        if not keys:
            raise DataError(
                f"{where}: no modality key (text, audio, vision); found keys {sorted(map(str, part))}"
            )
        features: dict[str, np.ndarray] = {}
        given: dict[str, np.ndarray] = {}
        for key in keys:
            mod = MMSA_MODALITIES[key]
            x = check_features(part.pop(key), where, key, n)
            x = as_float32(x, copy=must_copy(x, shared))
            counter.count(x, split=sname, modality=mod, file=path)
            ln = _given_lengths(part, key, where, n, x.shape[1])
            if ln is not None:
                given[mod] = ln
            features[mod] = x
        lengths = strip_padding(features, "end", explicit=given)
        for x in features.values():
            zero_nonfinite(x)
        ids = (
            ids_from_array(part["id"], n, where)
            if "id" in part
            else [f"{sname}[{i}]" for i in range(n)]
        )
        texts = ids_from_array(part["raw_text"], n, where, "raw_text") if "raw_text" in part else None
        splits[sname] = Split(features=features, lengths=lengths, labels=labels, ids=ids, texts=texts)
    return MultimodalDataset(
        name=Path(path).stem,
        splits=splits,
        task=SENTIMENT,
        source=f"mmsa:{path}",
        nonfinite=counter.finish(),
    )


def read_mmsa(path: str | os.PathLike[str], *, on_nonfinite: str = "zero") -> MultimodalDataset:
    """Read an MMSA pickle with the restricted unpickler.

    Args:
        path: e.g. ``aligned_50.pkl``.
        on_nonfinite: ``"zero"`` (replace NaN/inf by 0, warn) or ``"error"``.
    Returns:
        The dataset: (N, L, F) float32 end-padded features, (N,) lengths, (N, 1) sentiment.
    """
    return mmsa_from_dict(safe_load_pickle(path), path, on_nonfinite=on_nonfinite)
