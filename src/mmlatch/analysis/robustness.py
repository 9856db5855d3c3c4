"""Test-time robustness: corrupt one or all modalities of the test split and score each run.

Corruptions, at a level ``p`` (default 0, 0.1, ..., 0.9), applied to every selected
modality (one, or all of the run's):

- ``noise``: Gaussian noise on every real step, ``x + p * std_f * N(0, 1)``, with ``std_f``
  each feature's standard deviation over the real steps of the TRAIN split (a feature with
  std 0 gets no noise). Padding stays zero.
- ``drop``: each real step of the modality is lost with probability ``p``: its features are
  set to zero while lengths stay as they are. Zeroing rather than removing the steps keeps
  word-aligned modalities aligned (removing steps from one modality would break the
  alignment the late-fusion and top-down models need), so one corruption applies to every
  model. Steps are drawn independently per modality.
- ``missing``: the modality is missing for a fraction ``p`` of the test samples (chosen at
  random, ``round(p * N)`` of them, independently per modality): all its features are zero,
  its lengths stay the true ones.

Everything is seeded: the corruption of a (seed, corruption, level) is drawn from
``numpy.random.default_rng([seed, corruption index, round(level * 1e6)])``, in modality
order, so every run evaluated on the same data sees exactly the same corrupted inputs.
Level 0 leaves the data untouched: its metrics are exactly those of ``mmlatch evaluate``.

Summary per run and corruption: the area under the metric-vs-level curve (trapezoid rule),
divided by the level range (``max - min`` level), i.e. the curve's average height. For MAE
lower is better: a smaller area means a more robust model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmlatch.files import to_stderr as _stderr
from mmlatch.analysis.collect import (
    BATCH_SIZE,
    AnalysisError,
    collect_outputs,
    load_run_data,
    new_figure,
    run_labels,
    save_figure,
)
from mmlatch.data.dataset import Split
from mmlatch.metrics import compute_metrics, lower_is_better
from mmlatch.files import write_json, write_text
from mmlatch.training.precision import resolve_inference_precision

CORRUPTIONS: tuple[str, ...] = ("noise", "drop", "missing")
DEFAULT_LEVELS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))


def feature_std(split: Split, modality: str, chunk: int = 1024) -> np.ndarray:
    """(F,) standard deviation of each feature over the real steps of ``split``.

    Computed over row chunks (float64, Chan et al.'s pairwise merge) so that no float64
    copy of the whole split is made.
    """
    x, lengths = split.features[modality], split.lengths[modality]
    count, mean, m2 = 0, np.zeros(x.shape[2]), np.zeros(x.shape[2])
    for i in range(0, x.shape[0], chunk):
        real = np.arange(x.shape[1])[None, :] < lengths[i : i + chunk, None]  # (n, L)
        values = x[i : i + chunk][real].astype(np.float64)  # (steps, F)
        if not len(values):
            continue
        c_mean = values.mean(axis=0)
        c_m2 = ((values - c_mean) ** 2).sum(axis=0)
        total = count + len(values)
        delta = c_mean - mean
        mean = mean + delta * len(values) / total
        m2 = m2 + c_m2 + delta**2 * count * len(values) / total
        count = total
    return np.sqrt(m2 / max(count, 1))


def _real_steps(split: Split, modality: str) -> np.ndarray:
    x = split.features[modality]
    return np.arange(x.shape[1])[None, :] < split.lengths[modality][:, None]  # (N, L)


def corrupt_split(
    split: Split,
    corruption: str,
    level: float,
    modalities: Sequence[str],
    rng: np.random.Generator,
    stds: dict[str, np.ndarray] | None = None,
) -> Split:
    """A copy of ``split`` with ``modalities`` corrupted (module docstring); others are shared.

    Args:
        split: the clean split.
        corruption: ``noise``, ``drop`` or ``missing``.
        level: in [0, 1]; 0 returns ``split`` itself.
        modalities: the modalities to corrupt.
        rng: the random generator (drawn from in ``modalities`` order).
        stds: ``noise`` only: modality -> (F,) feature std (see :func:`feature_std`).
    """
    if corruption not in CORRUPTIONS:
        raise AnalysisError(f"unknown corruption {corruption!r}; choose from {list(CORRUPTIONS)}")
    if not 0.0 <= level <= 1.0:
        raise AnalysisError(f"corruption levels must lie in [0, 1], got {level}")
    if level == 0:
        return split
    features = dict(split.features)
    n = len(split)
    for m in modalities:
        x = split.features[m]
        if corruption == "noise":
            if stds is None or m not in stds:
                raise AnalysisError(f"noise needs the train std of modality {m!r}")
            scale = (level * stds[m]).astype(np.float32)  # (F,)
            noise = rng.standard_normal(x.shape, dtype=np.float32) * scale  # (N, L, F)
            features[m] = x + noise * _real_steps(split, m)[:, :, None]
        elif corruption == "drop":
            lost = (rng.random(x.shape[:2]) < level) & _real_steps(split, m)  # (N, L)
            features[m] = np.where(lost[:, :, None], np.float32(0), x)
        else:
            gone = rng.permutation(n)[: int(round(level * n))]
            out = x.copy()
            out[gone] = 0.0
            features[m] = out
    return replace(split, features=features)


def _rng(seed: int, corruption: str, level: float) -> np.random.Generator:
    return np.random.default_rng([seed, CORRUPTIONS.index(corruption), int(round(level * 1e6))])


def normalised_auc(levels: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area under ``values`` over ``levels``, divided by the level range.

    One level: that level's value.
    """
    lv = np.asarray(levels, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if lv.size == 1:
        return float(vals[0])
    return float(np.trapezoid(vals, lv) / (lv.max() - lv.min()))


def robustness_table(
    runs: Sequence[str | Path],
    data: str | None = None,
    corruptions: Sequence[str] = CORRUPTIONS,
    modality: str = "all",
    levels: Sequence[float] = DEFAULT_LEVELS,
    seed: int = 0,
    split: str = "test",
    reader_options: dict[str, Any] | None = None,
    batch_size: int = BATCH_SIZE,
    device: str = "cpu",
    precision: str = "auto",
) -> pd.DataFrame:
    """Metrics of every run at every corruption and level.

    Args:
        runs: finished run directories.
        data: data to corrupt (default: each run's own).
        corruptions: any of :data:`CORRUPTIONS`.
        modality: a modality name, or ``all`` (every modality of the run).
        levels: corruption levels in [0, 1], sorted.
        seed: seeds the corruptions (same seed, same corrupted inputs for every run).
        split: the split to corrupt and score.
        precision: ``auto`` (default), ``32`` or ``bf16``, resolved per run as ``evaluate`` does (see
            :mod:`mmlatch.training.precision`).
    Returns:
        Columns ``run, model, precision, corruption, modality, level`` and every metric of the task.
    """
    if not runs:
        raise AnalysisError("no run given")
    levels = [float(v) for v in levels]
    if not levels or sorted(levels) != levels or len(set(levels)) != len(levels):
        raise AnalysisError(f"levels must be distinct and increasing, got {levels}")
    for c in corruptions:
        if c not in CORRUPTIONS:
            raise AnalysisError(f"unknown corruption {c!r}; choose from {list(CORRUPTIONS)}")
    rows = []
    cache: dict[str, Any] = {}  # runs on the same data read it once
    for path, label in zip(runs, run_labels(runs)):
        run = load_run_data(path, data, reader_options, cache)
        if modality != "all" and modality not in run.modalities:
            raise AnalysisError(f"run {label!r} has no modality {modality!r}; it has {run.modalities}")
        targets = run.modalities if modality == "all" else [modality]
        chosen = resolve_inference_precision(
            precision, device, run.spec["model"], _stderr, len(run.spec["modality_dims"])
        )
        clean = run.dataset.split(split)
        stds = {m: feature_std(run.dataset.split("train"), m) for m in targets} if "noise" in corruptions else None
        for corruption in corruptions:
            for level in levels:
                corrupted = corrupt_split(clean, corruption, level, targets, _rng(seed, corruption, level), stds)
                out = collect_outputs(run.model, corrupted, batch_size, device, chosen)
                if not np.isfinite(out.prediction).all():
                    raise AnalysisError(
                        f"run {label!r} gave non-finite predictions under {corruption} at level {level}"
                    )
                metrics = compute_metrics(run.dataset.task, out.prediction, clean.labels)
                rows.append({"run": label, "model": run.spec["model"], "precision": chosen, "corruption": corruption,
                             "modality": modality, "level": level, **metrics})
    return pd.DataFrame(rows)




def _run_precision(table: pd.DataFrame, label: str) -> str | None:
    rows = table.loc[table["run"] == label, "precision"]
    return str(rows.iloc[0]) if len(rows) else None


def summarise(table: pd.DataFrame, metric: str = "mae") -> dict[str, dict[str, Any]]:
    """Per run: its model and the normalised AUC of ``metric`` per corruption."""
    if metric not in table.columns:
        known = [c for c in table.columns if c not in ("run", "model", "precision", "corruption", "modality", "level")]
        raise AnalysisError(f"no metric {metric!r} for this task; metrics: {known}")
    out: dict[str, dict[str, Any]] = {}
    for run, part in table.groupby("run", sort=False):
        auc = {
            c: normalised_auc(p["level"], p[metric])
            for c, p in part.groupby("corruption", sort=False)
        }
        out[str(run)] = {"model": str(part["model"].iloc[0]), "auc": auc}
    return out


def plot_robustness(table: pd.DataFrame, png: str | Path, metric: str = "mae") -> Path:
    """One panel per corruption: ``metric`` vs level, one line per run (AUC in the legend)."""
    summary = summarise(table, metric)
    corruptions = list(dict.fromkeys(table["corruption"]))
    fig = new_figure(4.2 * len(corruptions) + 0.5, 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(corruptions), sharey=True))
    for ax, corruption in zip(axes, corruptions):
        part = table[table["corruption"] == corruption]
        for i, (run, rows) in enumerate(part.groupby("run", sort=False)):
            auc = summary[str(run)]["auc"][corruption]
            ax.plot(rows["level"], rows[metric], marker="o", markersize=3, color=f"C{i % 10}",
                    label=f"{run} (AUC {auc:.3f})")
        ax.set_title(f"{corruption} ({part['modality'].iloc[0]})")
        ax.set_xlabel("level")
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"{metric} ({'lower' if lower_is_better(metric) else 'higher'} is better)")
    return save_figure(fig, png)


def run_robustness(
    runs: Sequence[str | Path],
    out_dir: str | Path,
    metric: str = "mae",
    **options: Any,
) -> dict[str, Any]:
    """:func:`robustness_table`, then ``robustness.csv``, ``robustness.png`` and
    ``robustness.json`` (settings and the AUC per run and corruption) into ``out_dir``.

    Returns:
        The content of ``robustness.json``.
    """
    table = robustness_table(runs, **options)
    summary = summarise(table, metric)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "robustness.csv", table.to_csv(index=False))
    plot_robustness(table, out / "robustness.png", metric)
    levels = [float(v) for v in options.get("levels", DEFAULT_LEVELS)]
    result = {
        "metric": metric,
        "auc": "trapezoid area under metric vs level, divided by the level range",
        "levels": levels,
        "corruptions": list(options.get("corruptions", CORRUPTIONS)),
        "modality": options.get("modality", "all"),
        "seed": options.get("seed", 0),
        "split": options.get("split", "test"),
        "runs": {
            label: {"run": str(path), "precision": _run_precision(table, label), **summary[label]}
            for path, label in zip(runs, run_labels(runs))
        },
    }
    write_json(out / "robustness.json", result)
    return result


__all__ = [
    "CORRUPTIONS",
    "DEFAULT_LEVELS",
    "corrupt_split",
    "feature_std",
    "normalised_auc",
    "plot_robustness",
    "robustness_table",
    "run_robustness",
    "summarise",
]
