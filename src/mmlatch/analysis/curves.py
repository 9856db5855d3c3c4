"""Training curves: loss and a validation metric per epoch, several runs overlaid.

Read from each run's ``log/metrics.csv`` (epochs counted from 1): the left panel shows the
training loss (solid) and validation loss (dashed) of every run, the right one the
validation metric (``val_mae`` by default). Runs are named by their directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.ticker import MaxNLocator

from mmlatch.files import write_text
from mmlatch.analysis.collect import (
    AnalysisError,
    companion_csv,
    new_figure,
    read_epoch_log,
    run_labels,
    save_figure,
)


def training_curves(runs: Sequence[str | Path], metric: str = "mae") -> pd.DataFrame:
    """Long table of every run's curves: ``run, epoch, train_loss, val_loss, val_<metric>``.

    Raises:
        AnalysisError: a run did not log ``val_<metric>`` (the message lists what it logged).
    """
    if not runs:
        raise AnalysisError("no run given")
    column = f"val_{metric}"
    parts = []
    for run, label in zip(runs, run_labels(runs)):
        log = read_epoch_log(run)
        if column not in log.columns:
            logged = sorted(c.removeprefix("val_") for c in log.columns if c.startswith("val_") and c != "val_loss")
            raise AnalysisError(f"run {str(run)!r} logged no {column}; its validation metrics: {logged}")
        part = log.reindex(columns=["train_loss", "val_loss", column]).reset_index()
        part.insert(0, "run", label)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def plot_curves(curves: pd.DataFrame, png: str | Path, metric: str = "mae") -> tuple[Path, Path]:
    """Loss (left) and validation metric (right) per epoch, one colour per run.

    Writes ``png`` (:func:`curves_figure`) and the table to the CSV beside it.

    Returns:
        (png path, csv path).
    """
    png = save_figure(curves_figure(curves, metric), png)
    csv = companion_csv(png)
    write_text(csv, curves.to_csv(index=False))
    return png, csv


def curves_figure(curves: pd.DataFrame, metric: str = "mae") -> Any:
    """The figure of :func:`plot_curves` (a matplotlib Figure) from :func:`training_curves`' table."""
    column = f"val_{metric}"
    fig = new_figure(11.0, 4.2)
    left, right = fig.subplots(1, 2)
    for i, (label, part) in enumerate(curves.groupby("run", sort=False)):
        colour = f"C{i % 10}"
        left.plot(part["epoch"], part["train_loss"], color=colour, label=f"{label} train")
        left.plot(part["epoch"], part["val_loss"], color=colour, linestyle="--", label=f"{label} valid")
        right.plot(part["epoch"], part[column], color=colour, marker="o", markersize=3, label=label)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.set_title("loss (solid: train, dashed: validation)")
    left.legend(fontsize=8)
    right.set_xlabel("epoch")
    right.set_ylabel(column)
    right.set_title(f"validation {metric}")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


__all__ = ["curves_figure", "plot_curves", "training_curves"]
