"""Files read for prediction, labels or not (``mmlatch predict --data PATH``).

Files WITH labels are read by their format's reader (so predictions are exactly those
``mmlatch evaluate`` scores). Files WITHOUT labels are read here:

- the own format (``mmlatch data convert``) with the ``<split>/labels`` entries left out;
- MulT-style pickles without ``labels`` (any split names, or one flat dict of arrays read
  as the split ``data``): keys ``text``, ``audio``, ``vision``/``visual``, optional ``id``
  and ``<key>_lengths``; zero rows are front padding (MulT) unless the file has MMSA keys
  (``raw_text``, ``text_bert``, ``audio_lengths``, ``vision_lengths``), then end padding;
- a plain ``.npz`` of arrays: one array per modality (N, L, F) end-padded, optional
  ``lengths`` (N,) shared or ``<modality>_lengths``, ``ids`` and ``labels``; split ``data``.

Missing lengths are found from zero padding as the readers do (jointly when the modalities
share their length, so aligned steps stay aligned). NaN/inf features are replaced by 0 with a
warning (or refused: ``on_nonfinite="error"``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.data.dataset import DataError, MultimodalDataset, Split
from mmlatch.data.readers._common import (
    NonfiniteCounter,
    as_float32,
    check_features,
    check_lengths,
    ids_from_array,
    require_numeric,
    strip_padding,
    zero_nonfinite,
)

#: file key -> modality name for pickles and plain .npz files
_MODALITY_KEYS: dict[str, str] = {"text": "text", "audio": "audio", "vision": "visual", "visual": "visual"}
_MMSA_MARKERS = ("raw_text", "text_bert", "audio_lengths", "vision_lengths", "annotations")


@dataclass
class ForPrediction:
    """What a file holds for prediction.

    Attributes:
        splits: split name -> Split read here (NaN labels (N, label width) unless
            ``labelled``); empty when ``dataset`` holds the data.
        labelled: whether the file has labels.
        dataset: a labelled file read by its format's reader (the caller fits it to the run).
    """

    splits: dict[str, Split] = field(default_factory=dict)
    labelled: bool = False
    dataset: MultimodalDataset | None = None


def read_prediction_file(
    path: str | Path,
    modalities: list[str],
    label_width: int,
    format: str | None = None,
    on_nonfinite: str = "zero",
) -> ForPrediction | None:
    """Read ``path`` for a model of ``modalities``, with or without labels.

    Args:
        path: a data file.
        modalities: the model's modalities (others in the file are dropped).
        label_width: label columns of the model's task (NaN labels get this width).
        format: a forced format (``--format``); only own-format and pickle files are read here.
    Returns:
        What the file holds, or None for data this function leaves to
        :func:`mmlatch.data.load_dataset` (directories, other formats, ``synthetic``).
    """
    from mmlatch.data.convert import is_own_file
    from mmlatch.data.readers import is_pickle

    p = Path(path)
    if str(path) == "synthetic" or not p.is_file() or format not in (None, "own", "npz", "mmlatch", "mult", "mmsa"):
        return None
    if is_own_file(p):
        splits = _own_without_labels(p, modalities, label_width)
        return None if splits is None else ForPrediction(splits, False)
    if is_pickle(p):
        return _read_pickle(p, modalities, label_width, on_nonfinite)
    if zipfile.is_zipfile(p) and format is None:
        return _plain_npz(p, modalities, label_width, on_nonfinite)
    return None


def _unlabelled_split(
    arrays: dict[str, np.ndarray],
    given: dict[str, np.ndarray],
    ids: list[str],
    side: str,
    modalities: list[str],
    label_width: int,
    where: str,
    counter: Any,
    split: str,
) -> Split:
    """A file's modality arrays -> an end-padded Split of the run's modalities, NaN labels.

    Padding is decided over all the file's modalities (as the readers do), then the run's
    modalities are kept.
    """
    missing = [m for m in modalities if m not in arrays]
    if missing:
        raise DataError(f"{where}: no features for modality {missing} (the run uses {modalities}); "
                        f"found {sorted(arrays)}")
    features: dict[str, np.ndarray] = {}
    n = len(ids)
    for m, x in arrays.items():
        x = as_float32(check_features(x, where, m, n), copy=True)
        counter.count(x, split=split, modality=m, file=where)
        features[m] = x
    lengths = strip_padding(features, side, explicit=given)  # type: ignore[arg-type]
    for x in features.values():
        zero_nonfinite(x)
    labels = np.full((n, label_width), np.nan, np.float32)
    keep = modalities
    return Split({m: features[m] for m in keep}, {m: lengths[m] for m in keep}, labels, ids)


def _file_lengths(values: Any, where: str, key: str, n: int, seq_len: int) -> np.ndarray:
    ln = np.asarray(require_numeric(np.asarray(values), where, key)).astype(np.int64).reshape(-1)
    if ln.shape != (n,):
        raise DataError(f"{where}: key {key!r} has {ln.size} lengths for {n} samples")
    return check_lengths(ln, where, key, seq_len)


def _split_from_arrays(
    part: Mapping[str, Any], modalities: list[str], label_width: int, path: Path, split: str, side: str, counter: Any
) -> Split:
    where = f"{path}, split {split!r}"
    arrays = {_MODALITY_KEYS[k]: v for k, v in part.items() if k in _MODALITY_KEYS}
    if not arrays:
        raise DataError(f"{where}: no modality arrays (text, audio, vision/visual); found keys {sorted(map(str, part))}")
    first = next(iter(arrays.values()))
    n = int(np.shape(first)[0])
    given: dict[str, np.ndarray] = {}
    for mod in arrays:
        keys = [f"{k}_lengths" for k, v in _MODALITY_KEYS.items() if v == mod] + ["lengths"]
        lkey = next((k for k in keys if k in part), None)
        if lkey is not None:
            given[mod] = _file_lengths(part[lkey], where, lkey, n, int(np.shape(arrays[mod])[1]))
    id_key = "id" if "id" in part else "ids" if "ids" in part else None
    ids = ids_from_array(part[id_key], n, where, id_key) if id_key else [f"{split}[{i}]" for i in range(n)]
    return _unlabelled_split(arrays, given, ids, side, modalities, label_width, where, counter, split)


def _read_pickle(path: Path, modalities: list[str], label_width: int, on_nonfinite: str) -> ForPrediction:
    """A MulT/MMSA pickle: through the readers when it has labels, else as unlabelled splits."""
    from mmlatch.data.readers import mmsa, mult
    from mmlatch.data.safe_pickle import safe_load_pickle

    data = safe_load_pickle(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: a pickle holding a {type(data).__name__}, expected a dict")
    if any(k in data for k in _MODALITY_KEYS):
        parts = {"data": data}  # one flat split
    else:
        parts = {str(k): v for k, v in data.items() if isinstance(v, dict)}
        if not parts:
            raise DataError(f"{path}: neither split dicts nor modality arrays; found keys {sorted(map(str, data))}")
    if any("regression_labels" in p for p in parts.values()):
        ds = mmsa.mmsa_from_dict(data, path, on_nonfinite=on_nonfinite)
    elif any("labels" in p for p in parts.values()):
        ds = mult.mult_from_dict(data, path, on_nonfinite=on_nonfinite)
    else:
        counter = NonfiniteCounter(on_nonfinite, path)
        out = {}
        for name, part in parts.items():
            side = "end" if any(k in part for k in _MMSA_MARKERS) else "front"
            out[name] = _split_from_arrays(part, modalities, label_width, path, name, side, counter)
        counter.finish()
        return ForPrediction(out, False)
    return ForPrediction(dataset=ds, labelled=True)


def _plain_npz(path: Path, modalities: list[str], label_width: int, on_nonfinite: str) -> ForPrediction:
    """A plain .npz of modality arrays (split ``data``); its ``labels`` are kept if present."""

    try:
        with np.load(path, allow_pickle=False) as z:
            part = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz file: {e}") from e
    counter = NonfiniteCounter(on_nonfinite, path)
    split = _split_from_arrays(part, modalities, label_width, path, "data", "end", counter)
    counter.finish()
    if "labels" in part:
        labels = np.asarray(part["labels"], dtype=np.float32).reshape(len(split), -1)
        if labels.shape[1] != label_width:
            raise DataError(f"{path}: labels have shape {labels.shape}, the run's task needs (N, {label_width})")
        split.labels = labels
        return ForPrediction({"data": split}, True)
    return ForPrediction({"data": split}, False)


def _own_without_labels(path: Path, modalities: list[str], label_width: int) -> dict[str, Split] | None:
    """Splits of an own-format file whose label entries are left out; None when it has labels."""
    import json

    from mmlatch.data.convert import META_KEY

    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z[META_KEY]))
            names = list(meta["splits"])
            if all(f"{s}/labels" in z.files for s in names):
                return None
            out = {}
            for s in names:
                missing = [m for m in modalities if f"{s}/{m}/features" not in z.files]
                if missing:
                    raise DataError(f"{path}: split {s!r} has no features for modality {missing}")
                feats = {m: z[f"{s}/{m}/features"] for m in modalities}
                lens = {m: z[f"{s}/{m}/lengths"].astype(np.int64) for m in modalities}
                n = int(next(iter(lens.values())).shape[0])
                ids = [str(v) for v in z[f"{s}/ids"]] if f"{s}/ids" in z.files else [f"{s}[{i}]" for i in range(n)]
                labels = (
                    z[f"{s}/labels"] if f"{s}/labels" in z.files
                    else np.full((n, label_width), np.nan, np.float32)
                )
                out[s] = Split(feats, lens, labels, ids)
    except DataError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise DataError(f"{path}: could not read as an mmlatch dataset: {type(e).__name__}: {e}") from e
    return out


__all__ = ["ForPrediction", "read_prediction_file"]
