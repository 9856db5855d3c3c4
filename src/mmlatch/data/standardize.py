"""Feature standardisation from training-split statistics.

Real feature releases come on wildly different scales: in the MFN release of ICT-MMMO one
COVAREP audio feature has a mean of 176 and values up to 255 while Facet visual features have
standard deviations of 0.01-0.3. :func:`fit_feature_stats` measures each feature's mean and
standard deviation over the REAL steps (padding excluded) of one split (the training split);
:meth:`FeatureStats.apply` maps ``x -> (x - mean) / std`` on real steps and leaves padding at
0. A feature that is constant on the training split (std < ``min_std``) is only centred.

``standardize: auto`` (the default of every run) standardises only the modalities whose
features are not on a unit scale (:func:`off_unit_scale`): raw CMU COVAREP/Facet features
are standardised, GloVe vectors and the built-in synthetic data are used as they are.

Runs store the statistics (``model.json``, key ``standardize``) and apply them as the model's
first step (:class:`mmlatch.modules.standardize.Standardized`), so evaluation, prediction,
analysis and export of a run all see the same numbers as its training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mmlatch.data.dataset import DataError, Split


@dataclass(frozen=True)
class FeatureStats:
    """Per-modality feature means and standard deviations.

    Attributes:
        mean: modality -> (F_k,) float32 means over real training steps.
        std: modality -> (F_k,) float32 standard deviations (constant features: 1).
    """

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"mean": {modality: [...]}, "std": {...}}``."""
        return {
            "mean": {k: [float(v) for v in a] for k, a in self.mean.items()},
            "std": {k: [float(v) for v in a] for k, a in self.std.items()},
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "standardize") -> FeatureStats:
        """Inverse of :meth:`to_dict`; DataError naming ``where`` on a malformed mapping."""
        try:
            mean = {k: np.asarray(v, np.float32) for k, v in values["mean"].items()}
            std = {k: np.asarray(v, np.float32) for k, v in values["std"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{where}: expected {{mean: {{modality: [...]}}, std: ...}} ({exc})") from exc
        if list(mean) != list(std) or any(mean[k].shape != std[k].shape or mean[k].ndim != 1 for k in mean):
            raise DataError(f"{where}: mean and std must give one vector per modality, of equal sizes")
        if any((std[k] <= 0).any() or not np.isfinite(std[k]).all() or not np.isfinite(mean[k]).all() for k in std):
            raise DataError(f"{where}: statistics must be finite with std > 0")
        return cls(mean, std)

    def apply(self, split: Split) -> Split:
        """A standardised copy of ``split`` (padding stays 0). Modalities without
        statistics are refused (DataError)."""
        missing = [m for m in split.features if m not in self.mean]
        if missing:
            raise DataError(f"no standardisation statistics for modality {missing}; they cover {list(self.mean)}")
        features = {}
        for m, x in split.features.items():
            if x.shape[2] != self.mean[m].shape[0]:
                raise DataError(
                    f"modality {m!r}: {x.shape[2]} features, the statistics have {self.mean[m].shape[0]}"
                )
            real = (np.arange(x.shape[1])[None, :] < split.lengths[m][:, None])[:, :, None]  # (N, L, 1)
            features[m] = np.where(real, (x - self.mean[m]) / self.std[m], 0.0).astype(np.float32)
        return Split(features, dict(split.lengths), split.labels, split.ids, split.texts)


def fit_feature_stats(split: Split, min_std: float = 1e-6) -> FeatureStats:
    """Means and standard deviations of every feature over the real steps of ``split``.

    Args:
        split: usually the training split.
        min_std: a feature with a smaller std counts as constant (std 1: centred only).
    Returns:
        The statistics (float64 sums, stored as float32).
    """
    mean, std = {}, {}
    for m, x in split.features.items():
        real = np.arange(x.shape[1])[None, :] < split.lengths[m][:, None]  # (N, L)
        steps = x[real].astype(np.float64)  # (real steps, F)
        if steps.shape[0] == 0:
            raise DataError(f"modality {m!r}: no real steps to fit standardisation statistics on")
        mu, sd = steps.mean(axis=0), steps.std(axis=0)
        mean[m] = mu.astype(np.float32)
        std[m] = np.where(sd < min_std, 1.0, sd).astype(np.float32)
    return FeatureStats(mean, std)


#: the ``auto`` rule: a feature is on a unit scale when its training mean is within
#: +/- MAX_ABS_MEAN and its standard deviation within [MIN_UNIT_STD, MAX_UNIT_STD] (a factor 10
#: of 1); features constant on the training split only need their mean checked
MAX_ABS_MEAN = 1.0
MIN_UNIT_STD = 0.1
MAX_UNIT_STD = 10.0


def off_unit_scale(split: Split, min_std: float = 1e-6) -> dict[str, str]:
    """The modalities whose features are not on a unit scale, and why (the ``auto`` rule).

    A modality is off a unit scale when any of its features has a training mean outside
    [-1, 1] or a (non-zero) standard deviation outside [0.1, 10], measured over real steps.

    Args:
        split: the training split.
        min_std: a feature with a smaller std counts as constant (only its mean is checked).
    Returns:
        modality -> ``"74 features, |mean| up to 176, std 3.9e-05 to 48"``, for the
        modalities to standardise (in the split's modality order); empty when all are on a
        unit scale.
    """
    out = {}
    for m, x in split.features.items():
        real = np.arange(x.shape[1])[None, :] < split.lengths[m][:, None]  # (N, L)
        steps = x[real].astype(np.float64)  # (real steps, F)
        if steps.shape[0] == 0:
            continue
        mean, sd = np.abs(steps.mean(axis=0)), steps.std(axis=0)
        varying = sd[sd >= min_std]
        big_mean = bool((mean > MAX_ABS_MEAN).any())
        bad_std = varying.size > 0 and bool(((varying < MIN_UNIT_STD) | (varying > MAX_UNIT_STD)).any())
        if big_mean or bad_std:
            stds = f", std {varying.min():.2g} to {varying.max():.3g}" if varying.size else ""
            out[m] = f"{x.shape[2]} features, |mean| up to {mean.max():.3g}{stds}"
    return out


def auto_stats(split: Split) -> tuple[FeatureStats | None, dict[str, str]]:
    """``standardize: auto``: statistics of the off-scale modalities of ``split`` only
    (None when there are none), and the reasons (:func:`off_unit_scale`)."""
    reasons = off_unit_scale(split)
    if not reasons:
        return None, reasons
    stats = fit_feature_stats(split)
    return FeatureStats({m: stats.mean[m] for m in reasons}, {m: stats.std[m] for m in reasons}), reasons


def describe_auto(reasons: dict[str, str], modalities: list[str]) -> str:
    """The one line a run prints for ``standardize: auto``."""
    kept = [m for m in modalities if m not in reasons]
    rule = f"|mean| <= {MAX_ABS_MEAN:g}, std {MIN_UNIT_STD:g} to {MAX_UNIT_STD:g}"
    if not reasons:
        return f"standardize auto: features used as they are (every modality on a unit scale: {rule})"
    done = "; ".join(f"{m}: {why}" for m, why in reasons.items())
    rest = f"; {', '.join(kept)} on a unit scale, used as is" if kept else ""
    return f"standardize auto: standardised with training-split statistics ({done}){rest}"


__all__ = ["FeatureStats", "auto_stats", "describe_auto", "fit_feature_stats", "off_unit_scale"]
