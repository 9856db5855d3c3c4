"""Feature standardisation from training-split statistics.

Real feature releases come on wildly different scales: in the MFN release of ICT-MMMO one
COVAREP audio feature has a mean of 176 and values up to 255 while Facet visual features have
standard deviations of 0.01-0.3. :func:`fit_feature_stats` measures each feature's mean and
standard deviation over the REAL steps (padding excluded) of one split (the training split);
:meth:`FeatureStats.apply` maps ``x -> (x - mean) / std`` on real steps and leaves padding at
0. A feature that is constant on the training split (std < ``min_std``) is only centred.

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
        return Split(features, dict(split.lengths), split.labels, split.ids)


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


__all__ = ["FeatureStats", "fit_feature_stats"]
