"""Modality gates over training (HCT-MG): weights per epoch and the chosen primary modality.

Read from the run's ``log/metrics.csv``: per epoch, ``gate_<modality>`` is the mean gate
weight of that modality over the epoch's training batches, and ``primary`` the index (into
the modality order of ``model.json``) of the modality with the highest mean weight, i.e.
the primary modality of the epoch. Nothing is recomputed: the plot shows what training saw.
Epochs are counted from 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from mmlatch.files import write_text
from mmlatch.analysis.collect import (
    AnalysisError,
    companion_csv,
    new_figure,
    read_epoch_log,
    read_model_spec,
    save_figure,
)


def gate_history(run_dir: str | Path) -> pd.DataFrame:
    """Per epoch (index, from 1): ``gate_<modality>`` columns and ``primary`` (a modality name).

    Raises:
        AnalysisError: the run logged no gate weights (its model has no modality gate).
    """
    spec = read_model_spec(run_dir)
    names = list(spec["modality_dims"])
    log = read_epoch_log(run_dir)
    columns = [f"gate_{m}" for m in names]
    if not all(c in log.columns for c in columns) or log[columns].dropna(how="all").empty:
        raise AnalysisError(
            f"run {str(run_dir)!r} (model {spec['model']!r}) logged no gate weights: gates exist "
            f"for models with a modality gate (hctmg, hctmg-mmlatch)"
        )
    out = log[columns].dropna(how="all").copy()
    if "primary" in log.columns:
        index = log.loc[out.index, "primary"]
    else:  # older logs: the primary is the modality with the highest mean weight
        index = pd.Series(np.nanargmax(out.to_numpy(), axis=1), index=out.index)
    out["primary"] = [names[int(i)] if pd.notna(i) else "" for i in index]
    return out


def plot_gates(history: pd.DataFrame, png: str | Path, title: str = "") -> tuple[Path, Path]:
    """Gate weights per epoch (top) and the primary modality per epoch (bottom).

    Writes ``png`` and the numbers (``history``) to the CSV beside it.

    Returns:
        (png path, csv path).
    """
    png = save_figure(gates_figure(history, title), png)
    csv = companion_csv(png)
    write_text(csv, history.to_csv())
    return png, csv


def gates_figure(history: pd.DataFrame, title: str = "") -> Any:
    """The figure of :func:`plot_gates` (a matplotlib Figure) from :func:`gate_history`."""
    names = [c.removeprefix("gate_") for c in history.columns if c.startswith("gate_")]
    epochs = history.index.to_numpy()
    fig = new_figure(7.0, 5.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    for name in names:
        top.plot(epochs, history[f"gate_{name}"], marker="o", markersize=3, label=name)
    top.set_ylabel("mean gate weight")
    top.set_ylim(0, 1)
    top.legend(loc="best")
    top.set_title(title or "modality gate over training")
    rows = [names.index(p) if p in names else np.nan for p in history["primary"]]
    bottom.plot(epochs, rows, drawstyle="steps-mid", color="black", marker="s", markersize=4)
    bottom.set_yticks(range(len(names)), names)
    bottom.set_ylim(-0.5, len(names) - 0.5)
    bottom.set_ylabel("primary")
    bottom.set_xlabel("epoch")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


__all__ = ["gate_history", "gates_figure", "plot_gates"]
