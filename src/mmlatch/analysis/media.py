"""Predict from a media file with a run trained on ``mmlatch extract`` features.

The run's ``model.json`` carries the extraction spec of its training data; the clip is
extracted with exactly that spec (:class:`mmlatch.extract.Extractor`, then the train-split
normalisation in the spec) and fed to the model. A run without a spec (CMU features,
synthetic data) or whose spec this installation cannot reproduce is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.analysis.predict import RunPredictor
from mmlatch.extract import (
    ClipError, ClipInput, ExtractError, Extractor, build_spec, check_compatible, describe, normalise, restrict,
    tokenize,
)
from mmlatch.extract.spec import check_version


def run_extraction_spec(predictor: RunPredictor) -> dict[str, Any]:
    """The spec the run's features were extracted with, restricted to the run's modalities.

    Raises:
        ExtractError: the run was not trained on ``mmlatch extract`` features, or the spec's
            dims differ from the model's.
    """
    spec = predictor.spec.get("extraction")
    where = f"run {predictor.path}"
    if not spec:
        data = predictor.config.data
        raise ExtractError(
            f"{where} was trained on {data!r}, features not made by `mmlatch extract` (e.g. CMU "
            f"COVAREP/Facet/GloVe-840B, which cannot be reproduced from media); predicting from "
            f"media needs a run trained on `mmlatch extract` output"
        )
    check_version(spec, where)
    spec = restrict(spec, predictor.modalities)
    for m in predictor.modalities:
        if int(spec[m]["dim"]) != predictor.modality_dims[m]:
            raise ExtractError(f"{where}: the extraction spec gives {m} {spec[m]['dim']} features, the model expects {predictor.modality_dims[m]}")
    return spec


def current_spec(trained: dict[str, Any], extractor: Extractor) -> dict[str, Any]:
    """The spec this installation produces with the trained spec's extractors and settings."""
    opts: dict[str, Any] = {"sample_rate": trained["sample_rate"], "timing": trained["timing"]["method"]}
    if "visual" in trained:
        opts.update(video_fps=trained["visual"]["frame_rate"], max_side=trained["visual"]["max_side"])
    entries = {m: describe(e) for m, e in extractor.extractors.items()}
    return build_spec(trained["modalities"], entries, **opts)


def predict_media(
    predictor: RunPredictor,
    media: Path | None,
    transcript: str | None,
    words: list[tuple[str, float, float]] | None = None,
) -> dict[str, Any]:
    """Extract one clip with the run's spec and predict it.

    Args:
        predictor: the loaded run (:func:`mmlatch.analysis.predict.load_run`).
        media: the audio/video file (may be None for a text-only run).
        transcript: the words said (None: recognised from the audio by pocketsphinx).
        words: user word timings (word, start, end).
    Returns:
        ``{"prediction", "mask_means" (top-down models), "words", "timing", ...}``.
    Raises:
        ExtractError: refused spec, or the clip could not be extracted (the reason named).
    """
    trained = run_extraction_spec(predictor)
    try:
        extractor = Extractor(trained, tokenize(transcript) if transcript else None)
    except ExtractError as e:
        raise ExtractError(f"run {predictor.path} needs the extractors it was trained with: {e}") from e
    check_compatible(trained, current_spec(trained, extractor), f"run {predictor.path}")
    if extractor.needs_media and media is None:
        raise ExtractError(f"run {predictor.path} uses {trained['modalities']}: --media is needed")
    try:
        clip = extractor.extract(ClipInput("clip", media, transcript, words))
    except ClipError as e:
        raise ExtractError(f"{media or 'transcript'}: {e}") from e
    feats = {m: normalise(clip.features[m], m, trained) for m in predictor.modalities}
    out = predictor.predict(feats, texts=" ".join(clip.words))  # the words, for models that read raw text
    pred = np.asarray(out.prediction).reshape(-1)
    result: dict[str, Any] = {
        "prediction": [float(v) for v in pred] if pred.size > 1 else float(pred[0]),
        "words": clip.words,
        **{k: v for k, v in clip.status.items() if k != "words"},
        "precision": predictor.precision,
    }
    if clip.intervals is not None:
        result["intervals"] = [[round(float(s), 3), round(float(e), 3)] for s, e in clip.intervals]
    if out.mask_means is not None:
        result["mask_means"] = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in out.mask_means.items()}
    return result


def check_data_spec(predictor: RunPredictor, path: str) -> None:
    """Refuse an extracted dataset file whose spec differs from the run's training data.

    Only the own ``.npz`` format carries a spec; other files are left to the readers' checks.

    Raises:
        ExtractError: one side was made by ``mmlatch extract`` and the other not, or the specs
            differ in a setting that changes feature values.
    """
    import json
    import zipfile

    from mmlatch.data.convert import META_KEY, is_own_file

    if not is_own_file(path):
        return
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z[META_KEY]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return  # the reader reports a broken file with its own message
    data_spec, run_spec = meta.get("extraction"), predictor.spec.get("extraction")
    where = f"run {predictor.path}"
    if data_spec is None and run_spec is None:
        return
    if data_spec is None or run_spec is None:
        made, other = ("this run", path) if run_spec is not None else (path, "this run")
        raise ExtractError(
            f"{path}: {made} was made from `mmlatch extract` features but {other} was not; "
            f"a model predicts only features made the way it was trained ({where})"
        )
    mods = [m for m in predictor.modalities if m in data_spec.get("modalities", [])]
    check_compatible(restrict(run_spec, mods), restrict(data_spec, mods), f"{where} (data {path})")
