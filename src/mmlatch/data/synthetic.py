"""The built-in synthetic multimodal sentiment dataset (no files needed).

MOSEI-like sizes: text 300, audio 74, visual 35 features per step; 8 .. 50 steps per sample
(word-aligned: all modalities share the length); labels in [-3, 3] on MOSEI's 1/3 grid, so
some labels are exactly 0.

Planted structure (why top-down masking should help). Every sample has a sentiment ``s``
(the label) and a decoy sentiment ``s'`` drawn the same way, independent of ``s``. Every word
(step) is either genuine or a decoy (half each), in phrases: a word keeps the previous word's
flag with probability 1 - 1/``flag_run`` and draws a new one otherwise (mean run length 5).
Only the TEXT shows which words are genuine: a fixed direction is added to each word with
sign + (genuine) or - (decoy). Audio features 0-11 and visual features 0-7 (the "A" group)
express a fixed pattern times ``s`` on genuine steps and times ``s'`` on decoy steps: the same
features with the same statistics, so audio and visual alone cannot tell the true sentiment
from the decoy. A mask computed from the text that keeps the genuine steps of audio and
visual and suppresses the decoy steps at their input is exactly what the task needs; a
late-fusion model has to undo the mixing that its unimodal encoders (LSTM + self-attention
over all steps) have already done. Audio 12-23 and visual 8-15 (the "B" group) express a
third sentiment ``s''``, independent of both, on every step (a feature-level distractor);
text carries a weak, noisy direct view of ``s``. The remaining features are noise.

Options: ``genuine_frac`` (share of genuine words), ``flag_run`` (1 = every word flagged
independently, which the LSTM feedback did not learn in our runs), ``context_scale`` (size of
the text's flag direction), ``visual_context_scale`` (> 0: the face shows the flag on visual
features 16-23 instead of expressing ``s`` / ``s'``; then the visual encoder alone cannot
solve the task either, and both masks of the audio see the flag), ``clean_modality`` (audio
or visual: that modality expresses ``s`` on every step, a known strongest modality).
"""

from __future__ import annotations

import numpy as np

from mmlatch.data.dataset import DataError, MultimodalDataset, Split, TaskSpec

DIMS: dict[str, int] = {"text": 300, "audio": 74, "visual": 35}
FLAG_VIEW = slice(16, 24)  # visual features that show the flag when visual_context_scale > 0
GROUPS: dict[str, tuple[slice, slice]] = {
    "audio": (slice(0, 12), slice(12, 24)),
    "visual": (slice(0, 8), slice(8, 16)),
}


def _sentiments(rng: np.random.Generator, n: int) -> np.ndarray:
    """n sentiments on MOSEI's grid: multiples of 1/3 in [-3, 3], mildly positive."""
    raw = rng.normal(0.2, 1.4, size=n)
    return np.clip(np.round(raw * 3) / 3, -3, 3).astype(np.float32)


def _synthetic_feature_names(visual_flag: bool) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {"text": [f"t{i}" for i in range(DIMS["text"])]}
    for mod, (ga, gb) in GROUPS.items():
        col = [f"noise{i}" for i in range(DIMS[mod])]
        for i in range(gb.start, gb.stop):
            col[i] = f"B{i - gb.start}"
        if mod == "visual" and visual_flag:
            for i in range(FLAG_VIEW.start, FLAG_VIEW.stop):
                col[i] = f"flag{i - FLAG_VIEW.start}"
        else:
            for i in range(ga.start, ga.stop):
                col[i] = f"A{i - ga.start}"
        names[mod] = col
    return names


def text_flags(split: Split) -> np.ndarray:
    """Each word's genuine (+1) / decoy (-1) flag as the text shows it: the sign of the text
    along its dominant direction (the planted flag direction). Up to one global sign; 0 at
    padded steps. split: a split of synthetic data -> (N, L)."""
    text = split.features["text"]
    valid = np.arange(text.shape[1])[None, :] < split.lengths["text"][:, None]
    steps = text[valid]
    direction = np.linalg.svd(steps - steps.mean(0), full_matrices=False)[2][0]
    return np.sign(text @ direction) * valid


def _make_split(
    rng: np.random.Generator,
    n: int,
    patterns: dict[str, np.ndarray],
    min_len: int,
    max_len: int,
    noise: float,
    genuine_frac: float,
    flag_run: float,
    prefix: str,
    clean_modality: str | None = None,
) -> Split:
    lengths = rng.integers(min_len, max_len + 1, size=n).astype(np.int64)
    s = _sentiments(rng, n)
    decoy = _sentiments(rng, n)
    distractor = _sentiments(rng, n)
    genuine = np.where(rng.random(size=(n, max_len)) < genuine_frac, 1.0, -1.0).astype(np.float32)  # (N, L)
    if flag_run > 1.0:  # phrases: a word keeps its predecessor's flag with probability 1 - 1/flag_run
        keep = rng.random(size=(n, max_len)) >= 1.0 / flag_run
        for t in range(1, max_len):
            genuine[:, t] = np.where(keep[:, t], genuine[:, t - 1], genuine[:, t])
    valid = np.arange(max_len)[None, :] < lengths[:, None]  # (N, L)

    feats: dict[str, np.ndarray] = {}
    # text: per-word genuine/decoy direction + weak noisy sentiment direction + noise
    text = rng.normal(0.0, noise, size=(n, max_len, DIMS["text"])).astype(np.float32)
    text += genuine[:, :, None] * patterns["context"][None, None, :]
    text_sent = s + rng.normal(0.0, 1.5, size=n).astype(np.float32)  # weak direct view
    text += 0.3 * text_sent[:, None, None] * patterns["text_sent"][None, None, :]
    feats["text"] = text
    expressed = np.where(genuine > 0, s[:, None], decoy[:, None])  # (N, L): s or s' per step
    for mod, (ga, gb) in GROUPS.items():
        x = rng.normal(0.0, noise, size=(n, max_len, DIMS[mod])).astype(np.float32)
        if mod + "_context" in patterns:  # shows the flag instead of expressing s / s'
            x[:, :, FLAG_VIEW] += genuine[:, :, None] * patterns[mod + "_context"][None, None, :]
        else:
            shown = s[:, None].repeat(max_len, axis=1) if mod == clean_modality else expressed  # (N, L)
            x[:, :, ga] += shown[:, :, None] * patterns[mod + "_a"][None, None, :]
        x[:, :, gb] += distractor[:, None, None] * patterns[mod + "_b"][None, None, :]
        feats[mod] = x
    for x in feats.values():
        x[~valid] = 0.0
    return Split(
        features=feats,
        lengths={m: lengths for m in feats},
        labels=s[:, None],
        ids=[f"{prefix}{i:05d}" for i in range(n)],
    )


def make_synthetic(
    n_train: int = 1200,
    n_valid: int = 300,
    n_test: int = 300,
    seed: int = 0,
    min_len: int = 8,
    max_len: int = 50,
    noise: float = 1.0,
    genuine_frac: float = 0.5,
    context_scale: float = 0.5,
    flag_run: float = 5.0,
    visual_context_scale: float = 0.0,
    clean_modality: str | None = None,
) -> MultimodalDataset:
    """Generate the synthetic dataset described in this module's docstring.

    Args:
        n_train, n_valid, n_test: samples per split.
        seed: the generator seed (the data only depend on it and the sizes).
        min_len, max_len: range of sequence lengths (inclusive).
        noise: standard deviation of the background noise of every feature.
        genuine_frac: probability that a word is genuine (its audio/visual express ``s``).
        context_scale: per-feature size of the text's genuine/decoy direction (noise is ``noise``).
        flag_run: mean length of a run of words sharing a flag (1: independent words).
        visual_context_scale: per-feature size of the flag direction on visual features 16-23
            (0: only the text shows the flag).
        clean_modality: ``audio`` or ``visual``: that modality's "A" group expresses the true
            sentiment ``s`` on EVERY step (no decoy steps), so it is the strongest modality by
            construction (for HCT-MG's gate vs a fixed primary). None: the default structure.
            The random draws are the same, so every other feature is unchanged.
    Returns:
        A dataset with splits train/valid/test and modalities text, audio, visual.
    """
    for name, value in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if int(value) < 1:
            raise DataError(f"synthetic data: {name} must be >= 1, got {value}")
    if not 1 <= min_len <= max_len:
        raise DataError(f"synthetic data: need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    if noise < 0:
        raise DataError(f"synthetic data: noise must be >= 0, got {noise}")
    if visual_context_scale < 0:
        raise DataError(f"synthetic data: visual_context_scale must be >= 0, got {visual_context_scale}")
    if clean_modality is not None and clean_modality not in GROUPS:
        raise DataError(f"synthetic data: clean_modality must be one of {sorted(GROUPS)}, got {clean_modality!r}")
    if clean_modality == "visual" and visual_context_scale > 0:
        raise DataError("synthetic data: clean_modality=visual needs visual_context_scale 0 (the face shows the flag)")
    if flag_run < 1.0:
        raise DataError(f"synthetic data: flag_run must be >= 1, got {flag_run}")
    if not 0.0 < genuine_frac <= 1.0:
        raise DataError(f"synthetic data: genuine_frac must be in (0, 1], got {genuine_frac}")
    rng = np.random.default_rng(seed)

    def unit(k: int, scale: float) -> np.ndarray:
        v = rng.normal(size=k).astype(np.float32)
        return (scale * v / np.linalg.norm(v) * np.sqrt(k)).astype(np.float32)

    patterns = {
        "context": unit(DIMS["text"], context_scale),
        "text_sent": unit(DIMS["text"], 0.3),
    }
    for mod, (ga, gb) in GROUPS.items():
        patterns[mod + "_a"] = unit(ga.stop - ga.start, 0.6)
        patterns[mod + "_b"] = unit(gb.stop - gb.start, 0.6)
    if visual_context_scale > 0:
        patterns["visual_context"] = unit(FLAG_VIEW.stop - FLAG_VIEW.start, visual_context_scale)
    splits = {
        name: _make_split(
            rng, int(n), patterns, min_len, max_len, noise, genuine_frac, flag_run, f"{name}_", clean_modality
        )
        for name, n in (("train", n_train), ("valid", n_valid), ("test", n_test))
    }
    return MultimodalDataset(
        name="synthetic",
        splits=splits,
        task=TaskSpec(),
        feature_names=_synthetic_feature_names(visual_context_scale > 0),
        source=f"synthetic(seed={seed})",
    )
