"""Top-down masks averaged per sentiment class: the MMLatch paper's Fig. 2 as heatmap + CSV.

Definition (what the heatmap and its CSV hold). For a top-down model and one modality k:

1. every sample's mask ``(L, F_k)`` is averaged over the sample's REAL steps (padding
   excluded): one vector of F_k numbers per sample;
2. the samples are grouped by class and the per-sample vectors are averaged over the samples
   of each class (every sample counts once, whatever its length), as the paper's Fig. 2
   averages over the test samples of each class.

Classes:

- sentiment in [-3, 3] (MOSI/MOSEI/synthetic): the label is clipped to [-3, 3] and rounded
  with :func:`numpy.round` (half to even, as ``acc7``), giving 7 classes named
  :data:`SENTIMENT_CLASSES`: ``neg++`` (-3, strongly negative), ``neg+`` (-2), ``neg`` (-1),
  ``neu`` (0), ``pos`` (+1), ``pos+`` (+2), ``pos++`` (+3, strongly positive);
- other single-output regression (e.g. MMMO's 1..5): clipped to the task's label range and
  rounded the same way; one class per whole value in the range (``"1"`` .. ``"5"``), or per
  whole value between the lowest and highest rounded label when the task has no range;
- classification: the task's classes.

A class without samples is NaN: an empty cell in the heatmap (white) and an empty field in
the CSV, never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmlatch.files import write_text
from mmlatch.analysis.collect import (
    BATCH_SIZE,
    AnalysisError,
    RunData,
    collect_outputs,
    companion_csv,
    new_figure,
    save_figure,
)
from mmlatch.data.dataset import TaskSpec

#: names of the rounded sentiment classes -3 .. +3
SENTIMENT_CLASSES: tuple[str, ...] = ("neg++", "neg+", "neg", "neu", "pos", "pos+", "pos++")


def label_classes(labels: np.ndarray, task: TaskSpec) -> tuple[np.ndarray, list[str]]:
    """Class of every sample for the mask analysis (see the module docstring).

    Args:
        labels: (N, num_outputs) or (N,) labels.
        task: the labels' task.
    Returns:
        (N,) class indices into the returned class names.
    """
    y = np.asarray(labels, dtype=np.float64)
    y = y[:, 0] if y.ndim == 2 else y
    if not np.isfinite(y).all():
        raise AnalysisError("labels contain NaN or inf: per-class averages need labelled data")
    if task.is_sentiment:
        return (np.round(np.clip(y, -3, 3)) + 3).astype(np.int64), list(SENTIMENT_CLASSES)
    if task.kind == "classification":
        return y.astype(np.int64), list(task.label_names)
    if task.kind == "regression" and task.num_outputs == 1:
        if task.label_range is not None:
            lo, hi = math.ceil(task.label_range[0]), math.floor(task.label_range[1])
            y = np.clip(y, task.label_range[0], task.label_range[1])
        rounded = np.round(y).astype(np.int64)
        if task.label_range is None or lo > hi:
            lo, hi = int(rounded.min()), int(rounded.max())
        rounded = np.clip(rounded, lo, hi)
        return rounded - lo, [str(v) for v in range(lo, hi + 1)]
    raise AnalysisError(
        f"per-class mask averages need one label per sample (sentiment, a single regression "
        f"output, or classes); this task is {task.kind} with {task.num_outputs} outputs"
    )


@dataclass
class MaskTable:
    """Average mask per feature and class.

    Attributes:
        modality: the masked modality.
        features: F feature names.
        classes: C class names.
        counts: (C,) samples per class.
        values: (F, C) float64 average masks; NaN for classes without samples.
    """

    modality: str
    features: list[str]
    classes: list[str]
    counts: np.ndarray
    values: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """Features as rows (index ``feature``), classes as columns."""
        return pd.DataFrame(
            self.values, index=pd.Index(self.features, name="feature"), columns=self.classes
        )


def average_by_class(per_sample: np.ndarray, classes: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of per-sample vectors over the samples of each class.

    Args:
        per_sample: (N, F) one vector per sample.
        classes: (N,) class indices in [0, n_classes).
    Returns:
        ((F, C) means with NaN for empty classes, (C,) counts).
    """
    counts = np.bincount(classes, minlength=n_classes)
    values = np.full((per_sample.shape[1], n_classes), np.nan)
    for c in np.flatnonzero(counts):
        values[:, c] = per_sample[classes == c].astype(np.float64).mean(axis=0)
    return values, counts


def default_modality(modalities: list[str]) -> str:
    """``visual`` when the run has it (the paper's figure), else its first modality."""
    return "visual" if "visual" in modalities else modalities[0]


def mask_table(
    run: RunData,
    split: str = "test",
    modality: str | None = None,
    batch_size: int = BATCH_SIZE,
    device: str = "cpu",
) -> MaskTable:
    """Average top-down mask of ``modality`` per class over ``split`` (module docstring).

    Raises:
        AnalysisError: the model returns no masks (not a top-down model), or an unknown
            modality.
    """
    modality = modality or default_modality(run.modalities)
    if modality not in run.modalities:
        raise AnalysisError(f"run {run.label!r} has no modality {modality!r}; it has {run.modalities}")
    data = run.dataset.split(split)
    outputs = collect_outputs(run.model, data, batch_size, device)
    if outputs.mask_means is None:
        raise AnalysisError(
            f"model {run.spec['model']!r} of run {run.label!r} returns no masks: mask analysis "
            f"needs a top-down model (mmlatch, mmlatch-linear, mult-mmlatch, hctmg-mmlatch)"
        )
    classes, names = label_classes(data.labels, run.dataset.task)
    values, counts = average_by_class(outputs.mask_means[modality], classes, len(names))
    dim = run.spec["modality_dims"][modality]
    features = list(run.dataset.feature_names.get(modality) or [])
    if len(features) != dim:
        features = [f"{modality}{i}" for i in range(dim)]
    return MaskTable(modality, features, names, counts, values)


def plot_mask_table(table: MaskTable, png: str | Path, title: str = "") -> tuple[Path, Path]:
    """Heatmap (features x classes, colour bar) to ``png`` and the numbers to the CSV beside it.

    Returns:
        (png path, csv path).
    """
    png = save_figure(mask_figure(table, title), png)
    csv = companion_csv(png)
    write_text(csv, table.to_frame().to_csv())
    return png, csv


def mask_figure(table: MaskTable, title: str = "") -> Any:
    """The heatmap of :func:`plot_mask_table` (a matplotlib Figure)."""
    import matplotlib as mpl

    n_feat, n_cls = table.values.shape
    fig = new_figure(1.6 + 0.75 * n_cls, min(2.0 + 0.16 * n_feat, 40.0))
    ax = fig.add_subplot()
    cmap = mpl.colormaps["viridis"].with_extremes(bad="white")  # empty classes stay empty
    finite = table.values[np.isfinite(table.values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 1e-3, hi + 1e-3
    image = ax.imshow(np.ma.masked_invalid(table.values), aspect="auto", cmap=cmap,
                      vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_xticks(range(n_cls), [f"{c}\n(n={n})" for c, n in zip(table.classes, table.counts)])
    step = max(1, math.ceil(n_feat / 80))  # at most ~80 feature labels
    ax.set_yticks(range(0, n_feat, step), table.features[::step], fontsize=7 if n_feat > 30 else 9)
    ax.set_xlabel("class")
    ax.set_ylabel(f"{table.modality} feature")
    ax.set_title(title or f"average top-down mask on {table.modality}")
    fig.colorbar(image, ax=ax, label="mask (mean over real steps, then samples)")
    return fig


__all__ = [
    "MaskTable",
    "SENTIMENT_CLASSES",
    "average_by_class",
    "default_modality",
    "label_classes",
    "mask_figure",
    "mask_table",
    "plot_mask_table",
]
