"""Multimodal Routing's routing coefficients averaged per class: heatmaps + CSV.

Definition (what the figure and its CSV hold). For a Multimodal Routing run (``routing``,
``routing-mmlatch``) and one split:

1. every sample's routing coefficients ``r_ij`` (``extras["routing"]``, features i x concepts
   j, each row summing to 1 over the concepts) and feature activations ``p_i``
   (``extras["activation"]``) are collected in evaluation mode;
2. the samples are grouped by class and averaged within each class (every sample counts
   once), as the paper's global interpretation averages the routing over the samples of each
   class.

Classes are those of the mask analysis (:func:`mmlatch.analysis.masks.label_classes`):
rounded sentiment (neg++ .. pos++), one per whole label value for other single-output
regression, the task's classes for classification; for multi-label tasks (IEMOCAP) one class
per label, holding the samples where that label is on (a sample may count in several). A
class without samples is NaN (blank in the figure, empty in the CSV).

Features are named as the model names them (``text``, ``audio``, ``visual``,
``text+audio``, ..., ``text+audio+visual``). Concepts are named after the outputs when the
model has one concept per output (classes, emotions), else ``c1`` .. ``cJ``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmlatch.analysis.collect import (
    BATCH_SIZE,
    AnalysisError,
    RunData,
    companion_csv,
    new_figure,
    save_figure,
)
from mmlatch.analysis.masks import label_classes
from mmlatch.data.dataset import TaskSpec
from mmlatch.training.inference import infer


def feature_names(model: torch.nn.Module) -> list[str] | None:
    """The routed features' names of a (possibly top-down wrapped) routing model, else None."""
    inner = getattr(model, "backbone", model)
    names = getattr(inner, "feature_names", None)
    return list(names) if names is not None else None


def _classes(labels: np.ndarray, task: TaskSpec) -> tuple[np.ndarray, list[str]]:
    """(N, C) bool membership and the class names."""
    if task.kind == "multilabel":
        y = np.asarray(labels, dtype=np.float64)
        if not np.isfinite(y).all():
            raise AnalysisError("labels contain NaN or inf: per-class averages need labelled data")
        return y > 0.5, list(task.label_names)
    index, names = label_classes(labels, task)
    return index[:, None] == np.arange(len(names))[None, :], names


def routing_table(rd: RunData, split: str = "test", device: str = "cpu") -> pd.DataFrame:
    """Mean routing coefficient per class, feature and concept (see the module docstring).

    Returns:
        Long table with columns ``class``, ``count`` (samples in the class), ``feature``,
        ``concept``, ``coefficient`` (mean r_ij) and ``activation`` (mean p_i), classes in
        order, then features, then concepts.
    Raises:
        AnalysisError: the run's model routes nothing, or the split has no samples.
    """
    features = feature_names(rd.model)
    if features is None:
        raise AnalysisError(
            f"run {str(rd.path)!r} (model {rd.spec['model']!r}) has no routing coefficients: "
            f"use a Multimodal Routing run (routing, routing-mmlatch)"
        )
    data = rd.dataset.split(split)
    out = infer(rd.model, data, batch_size=BATCH_SIZE, device=device, extras=("routing", "activation"))
    if not out.ids:
        raise AnalysisError(f"split {split!r} has no samples")
    r = out.extras["routing"]  # (N, N_features, J)
    p = out.extras["activation"]  # (N, N_features)
    task = rd.dataset.task
    member, classes = _classes(data.labels, task)  # (N, C)
    n_concepts = r.shape[2]
    concepts = list(task.label_names) if n_concepts == task.num_outputs and len(task.label_names) == n_concepts else [
        f"c{j + 1}" for j in range(n_concepts)
    ]
    rows = []
    for c, name in enumerate(classes):
        sel = member[:, c]
        count = int(sel.sum())
        mean_r = r[sel].mean(axis=0) if count else np.full(r.shape[1:], np.nan)
        mean_p = p[sel].mean(axis=0) if count else np.full(p.shape[1:], np.nan)
        for i, feat in enumerate(features):
            for j, concept in enumerate(concepts):
                rows.append(
                    {"class": name, "count": count, "feature": feat, "concept": concept,
                     "coefficient": float(mean_r[i, j]), "activation": float(mean_p[i])}
                )
    return pd.DataFrame(rows)


def plot_routing(table: pd.DataFrame, png: str | Path, title: str = "") -> tuple[Path, Path]:
    """One heatmap per class (features x concepts, colour: mean coefficient in [0, 1]).

    Writes ``png`` and ``table`` to the CSV beside it.

    Returns:
        (png path, csv path).
    """
    classes = list(dict.fromkeys(table["class"]))
    features = list(dict.fromkeys(table["feature"]))
    concepts = list(dict.fromkeys(table["concept"]))
    cols = min(len(classes), 4)
    rows = -(-len(classes) // cols)
    fig = new_figure(1.0 + 0.45 * len(concepts) * cols + 1.2, 0.6 + 0.32 * len(features) * rows + 0.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for ax, cls in zip(axes, classes):
        part = table[table["class"] == cls]
        grid = part.pivot(index="feature", columns="concept", values="coefficient").loc[features, concepts]
        image = ax.imshow(np.ma.masked_invalid(grid.to_numpy(dtype=float)), vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_title(f"{cls} (n={int(part['count'].iloc[0])})", fontsize=9)
        ax.set_xticks(range(len(concepts)), concepts, rotation=90, fontsize=7)
        ax.set_yticks(range(len(features)), features, fontsize=7)
    for ax in axes[len(classes):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes[: len(classes)]), label="mean routing coefficient")
    fig.suptitle(title or "routing coefficients per class")
    png = save_figure(fig, png)
    csv = companion_csv(png)
    table.to_csv(csv, index=False)
    return png, csv


__all__ = ["feature_names", "plot_routing", "routing_table"]
