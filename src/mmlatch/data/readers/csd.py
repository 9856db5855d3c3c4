"""CMU-MultimodalSDK computational sequences (``.csd``, HDF5), word-aligned the standard way.

A ``.csd`` file holds one feature set: ``/<root>/data/<video>/features`` (n, d) and
``/<root>/data/<video>/intervals`` (n, 2) [start, end] seconds, plus ``/<root>/metadata/*``
strings. A directory of them is one corpus. Files are opened with h5py and read one video at
a time, never whole.

Which file is what, by its root name (case-insensitive search, first match wins; a file whose
features are strings is always the words file), overridable with ``csd_modalities`` mapping a
root name or file stem to ``text``/``audio``/``visual``/``labels``/``words``/``ignore``
(e.g. ``{"COVAREP": "audio", "FACET_4.2": "ignore"}``). Root name contains:

- ``label`` -> labels
- ``vector``, ``glove``, ``word2vec``, ``embedding``, ``bert`` -> text (numeric word vectors)
- ``phone`` -> ignore
- ``word`` -> words (tokens, the time reference)
- ``covarep``, ``opensmile``, ``audio``, ``acoustic``, ``wav2vec``, ``mfcc``, ``librosa`` -> audio
- ``facet``, ``openface``, ``visual``, ``video``, ``vision``, ``face``, ``emotient`` -> visual

Anything else is ignored with a warning. Tokens are not features: a corpus whose only text
is the words file has no ``text`` modality (:func:`read_csd_words` reads the tokens).

The recipe (the SDK's ``align`` with an average collapse, then label alignment and folds):

1. Reference steps are the word intervals (words file; the word-vector file's intervals when
   there is no words file). ``"sp"`` pause tokens are dropped unless ``keep_sp``.
2. Each modality is averaged over each word: the plain mean of the frames that overlap the
   word by more than ``EPSILON`` = 1 ms (frame_start < word_end - eps and
   frame_end > word_start + eps, so frames that only touch the word are out). A word with no
   such frame gets a zero vector (the SDK's zero imputation). Non-finite frame values are
   counted per split and modality and replaced by 0 before averaging (or raise).
3. One segment per label interval, id ``<video>[<i>]`` (i = row in the labels file): the
   words overlapping the interval by more than ``EPSILON``. A label interval with no word is
   skipped (warned).
4. Splits by video id from ``folds``: a JSON file ``{"train": [...], "valid": [...],
   "test": [...]}`` (or such a mapping); without it, for MOSI/MOSEI/POM, the standard folds of
   the ``cmu-multimodal-sdk`` package (``mmsdk``) when installed. Videos missing from any
   used file or from every fold are dropped (warned).
5. Segments are end-padded to the longest segment (or cut to ``max_len`` words, keeping the
   first); all modalities share the segment's length.

Labels: 1 column -> sentiment in [-3, 3]; 7 columns (MOSEI "All Labels": sentiment, happy,
sad, anger, surprise, disgust, fear) -> the sentiment column; K other columns -> K-output
regression without a range check.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.data.dataset import SPLITS, DataError, MultimodalDataset, Split, TaskSpec
from mmlatch.data.readers._common import (
    SENTIMENT,
    NonfiniteCounter,
    h5_errors,
    check_label_range,
    decode_str,
    open_h5,
)

#: seconds; overlaps of this length or less do not count (as in the SDK's intersection)
EPSILON = 1e-3
CSD_ROLES = ("text", "audio", "visual", "labels", "words", "ignore")
#: (regular expression searched in the lower-cased root name, role), first match wins
DEFAULT_ROOT_ROLES: tuple[tuple[str, str], ...] = (
    (r"label", "labels"),
    (r"vector|glove|word2vec|embedding|bert", "text"),
    (r"phone", "ignore"),
    (r"word", "words"),
    (r"covarep|opensmile|audio|acoustic|wav2vec|mfcc|librosa", "audio"),
    (r"facet|openface|visual|video|vision|face|emotient", "visual"),
)
MODALITY_ORDER = ("text", "audio", "visual")
#: dataset tag -> module of the CMU SDK holding standard_{train,valid,test}_fold
SDK_FOLD_MODULES = {
    "CMU_MOSI": "mmsdk.mmdatasdk.dataset.standard_datasets.CMU_MOSI.cmu_mosi_std_folds",
    "CMU_MOSEI": "mmsdk.mmdatasdk.dataset.standard_datasets.CMU_MOSEI.cmu_mosei_std_folds",
    "POM": "mmsdk.mmdatasdk.dataset.standard_datasets.POM.pom_std_folds",
}


@dataclass
class _Seq:
    """One open computational sequence."""

    path: Path
    root: str
    data: Any  # h5py Group <root>/data
    metadata: Any  # h5py Group <root>/metadata or None
    textual: bool  # features are strings
    videos: list[str] = field(default_factory=list)  # keys of data (listed once, on opening)
    role: str = "ignore"


def _open_seq(path: Path, stack: ExitStack) -> _Seq:
    import h5py

    f = stack.enter_context(open_h5(path))
    with h5_errors(str(path)):
        roots = [k for k in f if isinstance(f[k], h5py.Group) and "data" in f[k]]
        if len(roots) != 1:
            raise DataError(
                f"{path}: expected one root group holding 'data' (<root>/data/<video>/...), "
                f"found top-level keys {sorted(f)}"
            )
        root = roots[0]
        data = f[root]["data"]
        meta = f[root]["metadata"] if "metadata" in f[root] else None
        textual = False
        for vid in data:
            g = data[vid]
            if isinstance(g, h5py.Group) and "features" in g:
                textual = g["features"].dtype.kind in "SUO"
                break
        videos = list(data)
    return _Seq(path=path, root=root, data=data, metadata=meta, textual=textual, videos=videos)


def _role(seq: _Seq, overrides: Mapping[str, str]) -> str:
    for key in (seq.root, seq.path.stem, seq.path.name):
        if key in overrides:
            role = overrides[key]
            if role not in CSD_ROLES:
                raise DataError(
                    f"csd_modalities[{key!r}] = {role!r}; expected one of {list(CSD_ROLES)}"
                )
            if seq.textual and role not in ("words", "ignore"):
                raise DataError(
                    f"{seq.path}: features are strings (tokens), cannot be used as {role!r}"
                )
            return role
    if seq.textual:
        return "words"
    name = seq.root.lower()
    for pattern, role in DEFAULT_ROOT_ROLES:
        if re.search(pattern, name):
            return "text" if role == "words" else role  # a numeric "...Words" file is vectors
    warnings.warn(
        f"{seq.path}: don't know which modality root {seq.root!r} is; ignored "
        f"(map it with csd_modalities={{{seq.root!r}: 'audio'}} or similar)",
        stacklevel=4,
    )
    return "ignore"


def _entry(seq: _Seq, vid: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, d), intervals (n, 2) float64) of one video."""
    import h5py

    here = f"{seq.path}{where}, video {vid!r}"
    with h5_errors(here):
        g = seq.data[vid]
        if not isinstance(g, h5py.Group):
            raise DataError(f"{here}: expected a group with 'features' and 'intervals'")
        for key in ("features", "intervals"):
            if key not in g:
                raise DataError(f"{here}: missing key {key!r}; found {sorted(g)}")
        try:
            feats = np.asarray(g["features"][()])
            iv = np.asarray(g["intervals"][()])
        except (OSError, ValueError, TypeError) as e:
            raise DataError(f"{here}: could not read (corrupt?): {e}") from e
    if iv.ndim != 2 or iv.shape[1] != 2 or iv.dtype.kind not in "fiu":
        raise DataError(
            f"{here}: key 'intervals' has shape {iv.shape} dtype {iv.dtype}, expected (n, 2) numbers"
        )
    if feats.ndim == 1:
        feats = feats[:, None]
    if feats.ndim != 2 or feats.shape[0] != iv.shape[0]:
        raise DataError(
            f"{here}: key 'features' has shape {feats.shape} but 'intervals' has {iv.shape[0]} rows"
        )
    if not seq.textual and feats.dtype.kind not in "fiub":
        raise DataError(f"{here}: key 'features' has dtype {feats.dtype}, expected numbers")
    return feats, iv.astype(np.float64)


def average_overlapping_frames(
    ref: np.ndarray, intervals: np.ndarray, features: np.ndarray, eps: float = EPSILON
) -> np.ndarray:
    """Average the frames overlapping each reference interval (zeros where none).

    A frame belongs to interval [s, e] when frame_start < e - eps and frame_end > s + eps.

    Args:
        ref: (n, 2) reference intervals (words), seconds.
        intervals: (m, 2) frame intervals.
        features: (m, d) frame features (finite).
    Returns:
        (n, d) float64 means.
    """
    n, d = ref.shape[0], features.shape[1]
    out = np.zeros((n, d), dtype=np.float64)
    m = intervals.shape[0]
    if n == 0 or m == 0:
        return out
    order = np.argsort(intervals[:, 0], kind="stable")
    fs, fe = intervals[order, 0], intervals[order, 1]
    feats = np.asarray(features[order], dtype=np.float64)
    if np.all(np.diff(fe) >= 0):
        # frames sorted by start and by end: those of a word form one run [lo, hi)
        lo = np.searchsorted(fe, ref[:, 0] + eps, side="right")
        hi = np.searchsorted(fs, ref[:, 1] - eps, side="left")
        cs = np.zeros((m + 1, d), dtype=np.float64)
        np.cumsum(feats, axis=0, out=cs[1:])
        cnt = hi - lo
        has = cnt > 0
        out[has] = (cs[hi[has]] - cs[lo[has]]) / cnt[has, None]
    else:  # overlapping frames of uneven length: test each word
        for i, (ws, we) in enumerate(ref):
            sel = (fs < we - eps) & (fe > ws + eps)
            if sel.any():
                out[i] = feats[sel].mean(axis=0)
    return out


def load_folds(folds: str | os.PathLike[str] | Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Read a folds JSON ``{"train": [video ids], "valid": [...], "test": [...]}``.

    Args:
        folds: the JSON file, or such a mapping.
    Returns:
        split -> list of video ids.
    """
    where = "folds"
    if isinstance(folds, Mapping):
        raw: Any = folds
    else:
        where = str(folds)
        try:
            with open(folds, encoding="utf-8") as f:
                raw = json.load(f)
        except OSError as e:
            raise DataError(f"{folds}: cannot read folds file: {e.strerror or e}") from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{folds}: not valid JSON: {e}") from e
    if not isinstance(raw, Mapping):
        raise DataError(f"{where}: expected an object with keys train, valid, test")
    missing = [s for s in SPLITS if s not in raw]
    if missing:
        raise DataError(f"{where}: missing split(s) {missing}; found keys {sorted(map(str, raw))}")
    out: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for s in SPLITS:
        ids = raw[s]
        if not isinstance(ids, (list, tuple)) or not all(isinstance(v, str) for v in ids):
            raise DataError(f"{where}: split {s!r} must be a list of video id strings")
        for v in ids:
            if v in seen and seen[v] != s:
                raise DataError(f"{where}: video {v!r} is in both {seen[v]!r} and {s!r}")
            seen[v] = s
        out[s] = list(ids)
    return out


def sdk_dataset_tag(names: Sequence[str]) -> str | None:
    """``CMU_MOSEI``/``CMU_MOSI``/``POM`` when the root or file names say so, else None."""
    text = " ".join(names).upper()
    if "MOSEI" in text:
        return "CMU_MOSEI"
    if "MOSI" in text:
        return "CMU_MOSI"
    if re.search(r"(^|[^A-Z])POM([^A-Z]|$)", text):
        return "POM"
    return None


def sdk_standard_folds(tag: str) -> dict[str, list[str]] | None:
    """The CMU SDK's standard folds for ``tag`` (see :data:`SDK_FOLD_MODULES`), or None when
    the ``cmu-multimodal-sdk`` package (``mmsdk``) is not installed.

    The fold file is located through the installed ``mmsdk`` package and its list literals
    are parsed (``ast.literal_eval``), without importing the SDK (whose import pulls in its
    network and progress-bar dependencies) or running any of its code.
    """
    spec = importlib.util.find_spec("mmsdk")
    if spec is None or not spec.submodule_search_locations:
        return None
    rel = Path(*SDK_FOLD_MODULES[tag].split(".")[1:]).with_suffix(".py")
    for base in spec.submodule_search_locations:
        file = Path(base) / rel
        if file.is_file():
            break
    else:
        return None
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        values = {
            t.id: ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name) and t.id.startswith("standard_")
        }
        return {s: [str(v) for v in values[f"standard_{s}_fold"]] for s in SPLITS}
    except (OSError, SyntaxError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{file}: could not read the standard folds: {e}") from e


def _tokens(feats: np.ndarray) -> list[str]:
    return [decode_str(v).strip() for v in feats[:, 0]]


def _csd_files(path: Path) -> list[Path]:
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix == ".csd" and p.is_file())
    if not files:
        raise DataError(f"{path}: no .csd files in this directory")
    return files


def read_csd_words(path: str | os.PathLike[str]) -> dict[str, tuple[list[str], np.ndarray]]:
    """Read the tokens of a words ``.csd`` (e.g. ``CMU_MOSI_ModifiedTimestampedWords.csd``).

    Args:
        path: the file, or a directory holding exactly one .csd with string features.
    Returns:
        video id -> (tokens including "sp", (n, 2) float64 [start, end] seconds).
    """
    files = _csd_files(Path(path))
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    with ExitStack() as stack:
        seqs = [_open_seq(p, stack) for p in files]
        words = [s for s in seqs if s.textual]
        if len(words) != 1:
            raise DataError(
                f"{path}: expected exactly one .csd with string (token) features, found "
                f"{[str(s.path.name) for s in words]}"
            )
        seq = words[0]
        for vid in seq.videos:
            feats, iv = _entry(seq, vid, "")
            out[vid] = (_tokens(feats), iv)
    return out


def _dimension_names(seq: _Seq, dim: int) -> list[str] | None:
    if seq.metadata is None or "dimension names" not in seq.metadata:
        return None
    try:
        names = [decode_str(v) for v in np.asarray(seq.metadata["dimension names"][()]).ravel()]
    except (OSError, ValueError, TypeError):
        return None
    return names if len(names) == dim else None


def _label_task(k: int) -> tuple[TaskSpec, slice]:
    if k == 1:
        return SENTIMENT, slice(0, 1)
    if k == 7:
        return SENTIMENT, slice(0, 1)  # MOSEI All Labels: column 0 is sentiment
    return TaskSpec(
        num_outputs=k, label_names=tuple(f"label_{i}" for i in range(k)), label_range=None
    ), slice(0, k)


def _assign_roles(path: Path, seqs: list[_Seq], overrides: dict[str, str]) -> tuple[dict[str, _Seq], list[str]]:
    """Each .csd file's role (one file per role); the numeric modalities present, in order.

    Raises:
        DataError: two files for one role, no numeric modality, no labels or no word alignment.
    """
    by_role: dict[str, _Seq] = {}
    for seq in seqs:
        seq.role = _role(seq, overrides)
        if seq.role == "ignore":
            continue
        if seq.role in by_role:
            other = by_role[seq.role]
            raise DataError(
                f"{path}: two .csd files map to {seq.role!r}: {other.path.name} (root "
                f"{other.root!r}) and {seq.path.name} (root {seq.root!r}); choose one with "
                f"csd_modalities={{{seq.root!r}: 'ignore'}}"
            )
        by_role[seq.role] = seq
    found = {s.path.name: s.role for s in seqs}
    mods = [m for m in MODALITY_ORDER if m in by_role]
    if not mods:
        hint = (
            " (tokens are not features: read them with read_csd_words)"
            if "words" in by_role
            else ""
        )
        raise DataError(
            f"{path}: no numeric modality among the .csd files {found}; need word vectors, "
            f"audio or visual features{hint}"
        )
    if "labels" not in by_role:
        raise DataError(
            f"{path}: no labels .csd (a root name containing 'label') among {found}"
        )
    if by_role.get("words") is None and by_role.get("text") is None:
        raise DataError(
            f"{path}: word alignment needs a words or word-vectors .csd; found {found}"
        )
    return by_role, mods


def _split_of_video(
    path: Path, seqs: list[_Seq], folds: str | os.PathLike[str] | Mapping[str, Sequence[str]] | None
) -> dict[str, str]:
    """Video id -> split, from ``folds`` or the CMU SDK's standard folds of the corpus."""
    if folds is not None:
        fold_ids = load_folds(folds)
    else:
        tag = sdk_dataset_tag(
            [s.root for s in seqs] + [s.path.name for s in seqs] + [path.name]
        )
        standard = sdk_standard_folds(tag) if tag else None
        if standard is None:
            why = (
                f"the standard {tag} folds need the cmu-multimodal-sdk package (mmsdk)"
                if tag
                else "no standard folds are known for this corpus"
            )
            raise DataError(
                f"{path}: which videos are train/valid/test? {why}; pass folds (--folds FILE, "
                f'a JSON {{"train": [video ids], "valid": [...], "test": [...]}})'
            )
        fold_ids = standard
    return {v: s for s in SPLITS for v in fold_ids[s]}


def _usable_videos(path: Path, used: list[_Seq], split_of: dict[str, str]) -> set[str]:
    """Videos present in every used .csd file (a warning counts those dropped, and those in no fold)."""
    videos = set(used[0].videos)
    for seq in used:
        videos &= set(seq.videos)
    partial = set().union(*(set(seq.videos) for seq in used)) - videos
    unassigned = sorted(v for v in videos if v not in split_of)
    if partial or unassigned:
        warnings.warn(
            f"{path}: dropped {len(partial)} videos missing from some .csd file and "
            f"{len(unassigned)} videos in no fold",
            stacklevel=3,  # the caller of read_csd
        )
    return videos


def _padded_splits(
    segs: dict[str, dict[str, list[np.ndarray]]],
    labs: dict[str, list[np.ndarray]],
    ids: dict[str, list[str]],
    mods: list[str],
    dims: dict[str, int],
    task: TaskSpec,
    labels_seq: _Seq,
) -> dict[str, Split]:
    """Per split: the segments end-padded to the longest segment of all splits (N, L, F)."""
    seq_len = max(len(a) for s in SPLITS for a in segs[s][mods[0]])
    splits: dict[str, Split] = {}
    for s in SPLITS:
        n = len(ids[s])
        lengths = np.array([len(a) for a in segs[s][mods[0]]], dtype=np.int64)
        features = {}
        for m in mods:
            x = np.zeros((n, seq_len, dims[m]), dtype=np.float32)  # (N, L, F)
            for i, a in enumerate(segs[s][m]):
                x[i, : len(a)] = a
            features[m] = x
            segs[s][m] = []  # free the pieces
        y = np.stack(labs[s]).reshape(n, task.num_outputs)
        check_label_range(y, task, f"{labels_seq.path}, split {s!r}", "features")
        splits[s] = Split(
            features=features, lengths={m: lengths.copy() for m in mods}, labels=y, ids=ids[s]
        )
    return splits


def _align_modalities(
    by_role: dict[str, _Seq], mods: list[str], vid: str, where: str, word_iv: np.ndarray,
    counter: NonfiniteCounter, split: str, dims: dict[str, int], names: dict[str, list[str]],
) -> dict[str, np.ndarray]:
    """One video's modalities averaged per word (modality -> (n_words, F) float32); ``dims``
    and ``names`` are filled from the first video and checked on the others."""
    aligned: dict[str, np.ndarray] = {}
    for m in mods:
        seq = by_role[m]
        feats, iv = _entry(seq, vid, where)
        feats = np.asarray(feats, dtype=np.float64)
        if dims.setdefault(m, feats.shape[1]) != feats.shape[1]:
            raise DataError(
                f"{seq.path}{where}, video {vid!r}: key 'features' has {feats.shape[1]} "
                f"columns, other videos have {dims[m]}"
            )
        if m not in names:
            names[m] = _dimension_names(seq, dims[m]) or []
        if counter.count(feats, split=split, modality=m, file=seq.path):
            np.nan_to_num(feats, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        aligned[m] = average_overlapping_frames(word_iv, iv, feats).astype(np.float32)
    return aligned


def read_csd(
    path: str | os.PathLike[str],
    *,
    folds: str | os.PathLike[str] | Mapping[str, Sequence[str]] | None = None,
    keep_sp: bool = False,
    csd_modalities: Mapping[str, str] | None = None,
    on_nonfinite: str = "zero",
    max_len: int | None = None,
) -> MultimodalDataset:
    """Read a directory of ``.csd`` files into word-aligned labelled segments.

    Args:
        path: the directory (or a single .csd file, which cannot make a dataset by itself).
        folds: JSON file or mapping of split -> video ids; None tries the CMU SDK folds.
        keep_sp: keep "sp" pause tokens as steps.
        csd_modalities: root name or file stem -> role, over the default mapping.
        on_nonfinite: ``"zero"`` or ``"error"``.
        max_len: cut segments to their first ``max_len`` words (default: no cut).
    Returns:
        The dataset: per split (N, L, F) float32 end-padded features, (N,) lengths (equal
        across modalities), (N, num_outputs) labels, ids ``<video>[<i>]``.
    """
    path = Path(path)
    files = _csd_files(path)
    overrides = dict(csd_modalities or {})
    if max_len is not None and max_len < 1:
        raise DataError(f"max_len must be >= 1, got {max_len}")
    with ExitStack() as stack:
        seqs = [_open_seq(p, stack) for p in files]
        by_role, mods = _assign_roles(path, seqs, overrides)
        ref = by_role.get("words") or by_role["text"]
        labels_seq = by_role["labels"]
        split_of = _split_of_video(path, seqs, folds)
        videos = _usable_videos(path, [by_role[r] for r in ("labels", "words", *mods) if r in by_role], split_of)

        counter = NonfiniteCounter(on_nonfinite, path)
        segs: dict[str, dict[str, list[np.ndarray]]] = {s: {m: [] for m in mods} for s in SPLITS}
        labs: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
        ids: dict[str, list[str]] = {s: [] for s in SPLITS}
        task: TaskSpec | None = None
        cols = slice(0, 1)
        label_dim = 0
        dims: dict[str, int] = {}
        names: dict[str, list[str]] = {}
        skipped = 0
        for vid in sorted(v for v in videos if v in split_of):
            split = split_of[vid]
            where = f", split {split!r}"
            ref_feats, word_iv = _entry(ref, vid, where)
            if ref.textual and not keep_sp:
                keep = np.array([t.lower() != "sp" for t in _tokens(ref_feats)], dtype=bool)
                word_iv = word_iv[keep]
            aligned = _align_modalities(by_role, mods, vid, where, word_iv, counter, split, dims, names)
            lab_feats, lab_iv = _entry(labels_seq, vid, where)
            if task is None:
                label_dim = lab_feats.shape[1]
                task, cols = _label_task(label_dim)
            elif lab_feats.shape[1] != label_dim:
                raise DataError(
                    f"{labels_seq.path}{where}, video {vid!r}: key 'features' has "
                    f"{lab_feats.shape[1]} label columns, other videos have {label_dim}"
                )
            for i, (ls, le) in enumerate(lab_iv):
                idx = np.flatnonzero(
                    (word_iv[:, 0] < le - EPSILON) & (word_iv[:, 1] > ls + EPSILON)
                )
                if idx.size == 0:
                    skipped += 1
                    continue
                if max_len is not None:
                    idx = idx[:max_len]
                for m in mods:
                    segs[split][m].append(aligned[m][idx])
                labs[split].append(np.asarray(lab_feats[i, cols], dtype=np.float32))
                ids[split].append(f"{vid}[{i}]")
        if skipped:
            warnings.warn(
                f"{path}: skipped {skipped} label intervals that contain no word", stacklevel=2
            )
        assert task is not None or not any(ids.values())
        empty = [s for s in SPLITS if not ids[s]]
        if empty:
            raise DataError(
                f"{path}: no segments for split(s) {empty}: do the fold video ids match the "
                f".csd video ids (e.g. {sorted(videos)[:3]})?"
            )
        assert task is not None
        splits = _padded_splits(segs, labs, ids, mods, dims, task, labels_seq)
        return MultimodalDataset(
            name=path.stem if path.is_file() else path.name,
            splits=splits,
            task=task,
            feature_names={m: v for m, v in names.items() if v},
            source=f"csd:{path}",
            nonfinite=counter.finish(),
        )
