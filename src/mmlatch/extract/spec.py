"""The extraction spec: what made a dataset's features, carried by the data and every run.

A plain JSON-able dict (``build_spec``), stored in the dataset file's metadata
(``extraction``), in the manifest JSON beside it and in each run's ``model.json``. A model
predicts only from features made the same way: :func:`check_compatible` compares every
setting that changes a feature's value (extractor, embedding file identity, sample and
frame rates, dims, feature names) and refuses a mismatch; package versions that differ are
reported as a warning. ``normalisation`` holds per-feature mean/std of the train split
(audio and visual; text vectors are used as they are), applied by :func:`normalise` both
when a dataset is written and when a clip is predicted.
"""

from __future__ import annotations

import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from mmlatch.extract.errors import ExtractError

SPEC_FORMAT = "mmlatch-extract"
SPEC_VERSION = 1
MODALITIES: tuple[str, ...] = ("text", "audio", "visual")
TOKENIZER = "lowercase-words-v1"
ALIGNMENT = "mean of the frames whose centre lies inside the word interval; nearest frame when none"
_PACKAGES = ("mmlatch", "librosa", "dlib-bin", "face-recognition-models", "pocketsphinx", "imageio-ffmpeg", "numpy")
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
    *,
    text_identity: str | None = None,
    embedding: str = "glove-6b-50d",
    text_dim: int | None = None,
    timing: str = "pocketsphinx",
    sample_rate: int = 16000,
    audio_hop_s: float = 0.01,
    video_fps: float = 5.0,
    max_side: int = 480,
    face_upsample: int = 1,
) -> dict[str, Any]:
    """A spec for ``modalities`` (normalisation left empty until the train split is seen)."""
    from mmlatch.extract.audio import AUDIO_FEATURES
    from mmlatch.extract.visual import VISUAL_FEATURES

    bad = [m for m in modalities if m not in MODALITIES]
    if bad or not modalities:
        raise ExtractError(f"unknown modality {bad}; choose from {list(MODALITIES)}")
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
    if "text" in modalities:
        spec["text"] = {
            "extractor": "glove", "embedding": embedding, "identity": text_identity, "dim": text_dim,
            "tokenizer": TOKENIZER, "unknown_words": "zero vector",
            "feature_names": [f"glove_{i}" for i in range(text_dim or 0)],
        }
    if "audio" in modalities:
        spec["audio"] = {
            "extractor": "librosa", "frame_rate": round(1 / audio_hop_s, 6), "hop_s": audio_hop_s,
            "window_s": 0.025, "dim": len(AUDIO_FEATURES), "feature_names": list(AUDIO_FEATURES),
        }
    if "visual" in modalities:
        spec["visual"] = {
            "extractor": "dlib-hog-68-landmarks", "frame_rate": video_fps, "max_side": max_side,
            "upsample": face_upsample, "dim": len(VISUAL_FEATURES), "feature_names": list(VISUAL_FEATURES),
        }
    return spec


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

    Text is returned unchanged; a modality without statistics is only NaN-cleaned.
    """
    x = np.asarray(features, dtype=np.float32)
    stats = spec.get("normalisation", {}).get(modality)
    if stats is not None:
        x = (x - np.asarray(stats["mean"], np.float32)) / np.asarray(stats["std"], np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
