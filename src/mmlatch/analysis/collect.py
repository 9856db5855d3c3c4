"""What every analysis starts from: a finished run, its data, and its outputs on a split.

A run's outputs are collected by :func:`mmlatch.training.inference.infer`, the loop
``mmlatch evaluate`` scores with (same loader, same batch size, same order), so predictions
collected here are bit-identical to the ones it scores. Besides the predictions, the outputs
keep what the analyses read from :class:`~mmlatch.modules.outputs.ModelOutput`:

- ``mask_means``: for top-down models, each sample's mask averaged over its REAL steps
  (padding excluded), per feature: modality -> (N, F_k);
- ``unimodal``: ``extras["unimodal"]`` (N, n_modalities, num_outputs), e.g. HCT-MG's
  unimodal heads;
- ``gate``: ``extras["gate"]`` (N, n_modalities).

Figures are drawn with matplotlib's object API (:class:`matplotlib.figure.Figure`, rendered
by the Agg canvas), never pyplot: no display, no global state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from mmlatch.data import MultimodalDataset, load_dataset
from mmlatch.data.dataset import Split
from mmlatch.training.config import TrainConfig
from mmlatch.training.inference import BATCH_SIZE, infer
from mmlatch.training.run import RunError, check_task, load_data, load_run_model

class AnalysisError(ValueError):
    """An analysis cannot be made from what it was given; the message says why."""


@dataclass
class RunData:
    """A finished run with its best weights and the data it is analysed on.

    Attributes:
        path: the run directory.
        model: the model in eval mode.
        spec: the run's ``model.json``.
        config: the run's ``config.yaml``.
        dataset: the data, restricted to the run's modalities in the model's order.
    """

    path: Path
    model: nn.Module
    spec: dict[str, Any]
    config: TrainConfig
    dataset: MultimodalDataset

    @property
    def label(self) -> str:
        """How the run is named in tables and legends: its directory name."""
        return self.path.name or str(self.path)

    @property
    def modalities(self) -> list[str]:
        return list(self.spec["modality_dims"])


def load_run_data(
    run_dir: str | Path,
    data: str | None = None,
    reader_options: dict[str, Any] | None = None,
    cache: dict[str, MultimodalDataset] | None = None,
) -> RunData:
    """Load a run and the data to analyse it on.

    Args:
        run_dir: a finished run directory.
        data: ``None`` (or the run's own ``data``): the run's data with its ``data_args``;
            otherwise this path (or ``synthetic``), read with ``reader_options`` only (the
            run's ``data_args`` belong to its own data).
        reader_options: reader options for ``data`` (``format``, ``on_nonfinite`` ...).
        cache: datasets already read (filled here): runs on the same data read it once.
    Returns:
        The run with its data, checked to have the run's modalities, feature sizes and task.
    Raises:
        RunError: missing run files, or data that does not fit the run.
    """
    model, spec, cfg = load_run_model(run_dir)
    own = data is None or data == cfg.data
    key = json.dumps(
        [cfg.data, cfg.data_args, cfg.modalities] if own else [data, reader_options or {}],
        sort_keys=True, default=str,
    )
    cache = {} if cache is None else cache
    if key not in cache:
        cache[key] = load_data(cfg, run=str(run_dir)) if own else load_dataset(str(data), **(reader_options or {}))
    dataset = cache[key]
    return RunData(Path(run_dir), model, spec, cfg, fit_dataset(dataset, spec, str(run_dir)))


def fit_dataset(
    dataset: MultimodalDataset, spec: dict[str, Any], run: str, same_task: bool = True
) -> MultimodalDataset:
    """``dataset`` restricted to the run's modalities (model order), checked against the run
    (its task too unless ``same_task`` is False: prediction ignores another task's labels)."""
    dims = {k: int(v) for k, v in spec["modality_dims"].items()}
    missing = [m for m in dims if m not in dataset.modalities]
    if missing:
        raise RunError(
            f"data {dataset.name!r} lacks modality {missing} that run {run!r} uses; "
            f"it has {list(dataset.modalities)}"
        )
    dataset = dataset.select_modalities(list(dims))
    if dataset.modality_dims != dims:
        raise RunError(f"data modalities {dataset.modality_dims} do not match run {run!r}'s {dims}")
    if same_task:
        check_task(dataset, spec, run)
    return dataset


def run_labels(runs: Sequence[str | Path]) -> list[str]:
    """Legend names: directory names, or the full paths when two runs share a name."""
    names = [Path(r).name or str(r) for r in runs]
    return names if len(set(names)) == len(names) else [str(r) for r in runs]


def read_model_spec(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``model.json`` (RunError naming the file when absent)."""
    from mmlatch.rundir import read_model_json

    return read_model_json(run_dir)


@dataclass
class SplitOutputs:
    """A model's outputs on every sample of a split, in the split's order.

    Attributes:
        ids: N sample ids.
        prediction: (N, num_outputs) float32 model outputs.
        labels: (N, num_outputs) labels as stored (NaN where a file had none).
        mask_means: top-down models: modality -> (N, F_k) each sample's mask averaged over
            its real steps; None for other models.
        unimodal: (N, n_modalities, num_outputs) ``extras["unimodal"]`` or None.
        gate: (N, n_modalities) ``extras["gate"]`` or None.
    """

    ids: list[str]
    prediction: np.ndarray
    labels: np.ndarray
    mask_means: dict[str, np.ndarray] | None = None
    unimodal: np.ndarray | None = None
    gate: np.ndarray | None = None


def collect_outputs(
    model: nn.Module, split: Split, batch_size: int = BATCH_SIZE, device: str = "cpu", precision: str = "32"
) -> SplitOutputs:
    """Run ``model`` (eval mode) over ``split`` and keep predictions, masks and extras
    (through :func:`mmlatch.training.inference.infer`, the one inference loop), in
    ``precision`` (a resolved inference precision: ``32`` or ``bf16``, see
    :mod:`mmlatch.training.precision`).

    Returns:
        The split's :class:`SplitOutputs`.
    """
    out = infer(
        model, split, batch_size=batch_size, device=device, precision=precision, masks=True, extras=("unimodal", "gate")
    )
    return SplitOutputs(
        ids=list(split.ids),
        prediction=out.prediction,
        labels=split.labels,
        mask_means=out.mask_means,
        unimodal=out.extras.get("unimodal"),
        gate=out.extras.get("gate"),
    )


def read_epoch_log(run_dir: str | Path) -> pd.DataFrame:
    """A run's ``log/metrics.csv`` as one row per epoch, epochs counted from 1.

    The CSV counts epochs from 1 like ``best_epoch`` in ``metrics.json`` (runs written before
    that counted from 0, as Lightning does, and are shifted). Should an epoch appear in several rows (a resumed
    run), its last non-empty value of every column is kept.

    Raises:
        RunError: the run has no ``log/metrics.csv`` or it has no epoch rows.
    """
    path = Path(run_dir) / "log" / "metrics.csv"
    if not path.is_file():
        raise RunError(f"run directory {str(run_dir)!r} has no log/metrics.csv: is it a finished run?")
    frame = pd.read_csv(path)
    if "epoch" not in frame.columns or frame["epoch"].dropna().empty:
        raise RunError(f"{path}: no per-epoch rows (no 'epoch' column values)")
    frame = frame.dropna(subset=["epoch"])
    frame = frame.groupby(frame["epoch"].astype(int), sort=True).last()  # last non-null per column
    frame = frame.drop(columns=[c for c in ("epoch", "step") if c in frame.columns])
    shift = 1 if frame.index.min() == 0 else 0  # a run written when the CSV counted from 0
    frame.index = pd.Index(frame.index + shift, name="epoch")
    return frame


def new_figure(width: float, height: float) -> Any:
    """A matplotlib Figure (Agg canvas, no pyplot)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG to ``path`` (parents created)."""
    from mmlatch.files import atomic_write

    path = Path(path)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, dpi=dpi, format="png")
    return path


def companion_csv(png: str | Path) -> Path:
    """The CSV written beside a figure: same name, ``.csv`` suffix."""
    return Path(png).with_suffix(".csv")


def default_out(run_dir: str | Path, name: str) -> Path:
    """Where an analysis of a run goes by default: ``RUN/analysis/<name>``."""
    return Path(run_dir) / "analysis" / name


__all__ = [
    "AnalysisError",
    "BATCH_SIZE",
    "RunData",
    "SplitOutputs",
    "collect_outputs",
    "companion_csv",
    "default_out",
    "fit_dataset",
    "load_run_data",
    "new_figure",
    "read_epoch_log",
    "read_model_spec",
    "run_labels",
    "save_figure",
]
