"""Error on incongruent vs congruent samples, grouped by the sign of unimodal predictions.

Definition. A model with unimodal predictions (``extras["unimodal"]``, (N, n, 1), e.g.
HCT-MG's unimodal heads) gives every sample one prediction per modality. Each is given a
sign relative to a centre ``c``: positive when ``u >= c``, negative when ``u < c`` (the
``>= 0`` convention of ``acc2_has0``). The centre is

- ``0`` for sentiment in [-3, 3] (positive vs negative sentiment);
- the mean of the run's TRAIN labels for any other single-output regression (e.g. MMMO's
  1..5 ratings: above vs below the average rating).

A sample is **incongruent** when its unimodal predictions do not all have the same sign
(some modality says positive, another negative), **congruent** when they all agree. For every
run the table reports, per group (and for all samples), the number of samples and the mean
absolute error of the run's (fused) prediction against the label.

Grouping: each run is grouped by its own unimodal predictions; with ``reference`` every run
is grouped by the reference run's (so runs without unimodal predictions, e.g. the baseline,
can be compared on the same groups). Only single-output regression tasks are supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmlatch.files import write_text
from mmlatch.analysis.collect import (
    BATCH_SIZE,
    AnalysisError,
    RunData,
    SplitOutputs,
    collect_outputs,
    companion_csv,
    load_run_data,
    new_figure,
    run_labels,
    save_figure,
)
from mmlatch.data.dataset import MultimodalDataset

GROUPS: tuple[str, ...] = ("congruent", "incongruent", "all")


def sign_centre(dataset: MultimodalDataset) -> float:
    """``c`` of the module docstring: 0 for sentiment, else the train labels' mean."""
    task = dataset.task
    if task.kind != "regression" or task.num_outputs != 1:
        raise AnalysisError(
            f"incongruity needs a single-output regression task; this one is {task.kind} "
            f"with {task.num_outputs} outputs"
        )
    if task.is_sentiment:
        return 0.0
    return float(np.mean(dataset.split("train").labels[:, 0], dtype=np.float64))


def incongruent_mask(unimodal: np.ndarray, centre: float) -> np.ndarray:
    """(N,) True where the unimodal predictions (N, n[, 1]) do not all share a sign about ``centre``."""
    u = np.asarray(unimodal, dtype=np.float64).reshape(unimodal.shape[0], unimodal.shape[1], -1)[:, :, 0]
    positive = u >= centre  # (N, n)
    return positive.any(axis=1) & ~positive.all(axis=1)


def grouping(run: RunData, outputs: SplitOutputs) -> tuple[list[str], np.ndarray]:
    """(ids, (N,) incongruent) from ``run``'s unimodal predictions; AnalysisError when it has none."""
    if outputs.unimodal is None:
        raise AnalysisError(
            f"model {run.spec['model']!r} of run {run.label!r} gives no unimodal predictions "
            f"(extras['unimodal']); use an HCT-MG run (hctmg, hctmg-mmlatch), or pass a "
            f"reference run (--reference RUN) whose unimodal predictions group the samples"
        )
    return outputs.ids, incongruent_mask(outputs.unimodal, sign_centre(run.dataset))


def incongruity_table(
    runs: Sequence[str | Path],
    reference: str | Path | None = None,
    data: str | None = None,
    split: str = "test",
    reader_options: dict[str, Any] | None = None,
    batch_size: int = BATCH_SIZE,
    device: str = "cpu",
) -> pd.DataFrame:
    """Per run and group (congruent, incongruent, all): samples, MAE and accuracy (module
    docstring; ``acc``: share of predictions on the label's side of the centre, the ``>= c``
    convention).

    Returns:
        Columns ``run, model, group, n, mae, acc``.
    """
    if not runs:
        raise AnalysisError("no run given")
    ref_groups: dict[str, bool] | None = None
    cache: dict[str, Any] = {}  # runs on the same data read it once
    if reference is not None:
        ref = load_run_data(reference, data, reader_options, cache)
        ids, mask = grouping(ref, collect_outputs(ref.model, ref.dataset.split(split), batch_size, device))
        ref_groups = dict(zip(ids, mask.tolist()))
    rows = []
    for path, label in zip(runs, run_labels(runs)):
        run = load_run_data(path, data, reader_options, cache)
        outputs = collect_outputs(run.model, run.dataset.split(split), batch_size, device)
        if ref_groups is None:
            _, incongruent = grouping(run, outputs)
        else:
            missing = [i for i in outputs.ids if i not in ref_groups]
            if missing:
                raise AnalysisError(
                    f"run {label!r}'s {split} samples are not all in the reference run's "
                    f"(e.g. {missing[:3]}): both must use the same data"
                )
            incongruent = np.array([ref_groups[i] for i in outputs.ids], dtype=bool)
        centre = sign_centre(run.dataset)  # also the task check for runs grouped by a reference
        error = np.abs(outputs.prediction[:, 0].astype(np.float64) - outputs.labels[:, 0])
        right = (outputs.prediction[:, 0] >= centre) == (outputs.labels[:, 0] >= centre)  # same side as the label
        for group, select in zip(GROUPS, (~incongruent, incongruent, np.ones_like(incongruent))):
            rows.append({
                "run": label,
                "model": run.spec["model"],
                "group": group,
                "n": int(select.sum()),
                "mae": float(error[select].mean()) if select.any() else float("nan"),
                "acc": float(right[select].mean()) if select.any() else float("nan"),
            })
    return pd.DataFrame(rows, columns=["run", "model", "group", "n", "mae", "acc"])


def plot_incongruity(table: pd.DataFrame, png: str | Path) -> tuple[Path, Path]:
    """Bar chart of MAE per group (x) and run (bars); writes ``png`` and the table as CSV beside it.

    Returns:
        (png path, csv path).
    """
    runs = list(dict.fromkeys(table["run"]))
    width = 0.8 / max(len(runs), 1)
    fig = new_figure(2.5 + 1.6 * len(GROUPS) * max(1, len(runs) / 2), 4.2)
    ax = fig.add_subplot()
    for i, run in enumerate(runs):
        part = table[table["run"] == run].set_index("group").reindex(list(GROUPS))
        xs = np.arange(len(GROUPS)) + (i - (len(runs) - 1) / 2) * width
        bars = ax.bar(xs, part["mae"].fillna(0.0), width, label=run, color=f"C{i % 10}")
        for bar, n, mae in zip(bars, part["n"], part["mae"]):
            text = f"n={int(n)}" if pd.notna(mae) else "n=0\n(empty)"
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(GROUPS)), list(GROUPS))
    ax.set_ylabel("MAE")
    ax.set_title("error on samples whose unimodal predictions agree / disagree in sign")
    ax.legend(fontsize=8)
    png = save_figure(fig, png)
    csv = companion_csv(png)
    write_text(csv, table.to_csv(index=False))
    return png, csv


__all__ = ["GROUPS", "incongruent_mask", "incongruity_table", "plot_incongruity", "sign_centre"]
