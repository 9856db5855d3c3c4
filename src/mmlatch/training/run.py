"""Train a configured run into a directory, and evaluate a finished run.

A run directory holds:

- ``config.yaml``: the fully resolved :class:`TrainConfig`;
- ``model.json``: what is needed to rebuild the model (name, all builder arguments,
  modality dims, task);
- ``checkpoints/best.ckpt`` (best validation loss) and ``checkpoints/last.ckpt``: Lightning
  checkpoints with optimizer and scheduler state;
- ``model.safetensors``: the best weights alone (what ``evaluate``/``predict`` load);
- ``log/metrics.csv``: one row per epoch (train loss, validation loss and metrics, lr);
- ``metrics.json``: ``{model, data, seed, params, best_epoch, epochs_run, valid, test}``;
- ``timing.json``: seconds of training (kept out of metrics.json so it is reproducible).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from safetensors.torch import load_file, save_file
from torch import nn

from mmlatch.data import MultimodalDataset, TaskSpec, load_dataset
from mmlatch.data.batching import make_loader
from mmlatch.data.standardize import FeatureStats, fit_feature_stats
from mmlatch.metrics import compute_metrics
from mmlatch.models import count_parameters, create_model, get_entry, model_arguments
from mmlatch.modules.standardize import Standardized
from mmlatch.training.config import TrainConfig, save_config
from mmlatch.training.module import TaskModule


class RunError(RuntimeError):
    """A run directory is missing or incomplete; the message names the file."""


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but no CUDA device is available")
    return device


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename); NaN becomes null."""
    text = json.dumps(_nan_to_none(data), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_epoch_log(path: Path, history: list[dict[str, float]]) -> None:
    """The per-epoch CSV (one row per epoch, epochs from 0), rewritten atomically."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(history)
    frame.insert(0, "epoch", range(len(history)))
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return x


def _quiet_lightning() -> None:
    """Silence Lightning's start-up banners (GPU/TPU availability, tips); keep warnings."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\).*")


def load_data(cfg: TrainConfig, data: str | None = None) -> MultimodalDataset:
    """The dataset a config names, or ``data`` instead (then without the config's reader
    options, which belong to the config's own data)."""
    if data and data != cfg.data:
        return load_dataset(data, modalities=cfg.modalities)
    return load_dataset(cfg.data, modalities=cfg.modalities, **cfg.data_args)


def build_model(cfg: TrainConfig, dataset: MultimodalDataset) -> tuple[nn.Module, dict[str, Any]]:
    """The configured model for this dataset, and its complete ``model.json`` description."""
    args = dict(cfg.model_args)
    if get_entry(cfg.model).topdown:
        args = {**cfg.topdown_args, **args}
    args["num_outputs"] = dataset.task.num_outputs
    model = create_model(cfg.model, dataset.modality_dims, **args)
    full_args = model_arguments(cfg.model)
    full_args.update({k: v for k, v in args.items() if v is not None})
    spec = {
        "model": cfg.model,
        "model_args": full_args,
        "modality_dims": dataset.modality_dims,
        "task": asdict(dataset.task),
    }
    if cfg.standardize:  # training-split statistics, stored with the run and applied in the model
        spec["standardize"] = fit_feature_stats(dataset.split("train")).to_dict()
        model = _standardized(model, spec)
    return model, spec


def _standardized(model: nn.Module, spec: dict[str, Any]) -> nn.Module:
    """``model`` behind the run's stored standardisation (``spec["standardize"]``)."""
    stats = FeatureStats.from_dict(spec["standardize"], where="model.json: standardize")
    return Standardized(model, stats.mean, stats.std)


@torch.inference_mode()
def predict_split(
    model: nn.Module, dataset: MultimodalDataset, split: str, batch_size: int = 64, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Predictions of ``model`` (eval mode) on a whole split.

    Returns:
        predictions (N, num_outputs), labels (N, num_outputs), ids (N).
    """
    model.eval().to(device)
    preds, labels, ids = [], [], []
    for batch in make_loader(dataset.split(split), batch_size, shuffle=False):
        batch = batch.to(device)
        preds.append(model(batch.features, batch.lengths).prediction.float().cpu())
        labels.append(batch.labels.cpu())
        ids.extend(batch.ids)
    return torch.cat(preds).numpy(), torch.cat(labels).numpy(), ids


def evaluate_model(
    model: nn.Module, dataset: MultimodalDataset, split: str, device: str = "cpu"
) -> dict[str, float]:
    """The task's metrics of ``model`` on ``split``, computed over the whole split."""
    pred, labels, _ = predict_split(model, dataset, split, device=device)
    return compute_metrics(dataset.task, pred, labels)


def _finished_training(ckpt_path: Path, cfg: TrainConfig) -> bool:
    """True when ``last.ckpt`` records a fit that already ended (max epochs or early stop)."""
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if int(state.get("epoch", -1)) + 1 >= cfg.epochs:
        return True
    for key, cb in state.get("callbacks", {}).items():
        if key.startswith("EarlyStopping") and int(cb.get("wait_count", 0)) >= int(cb.get("patience", cfg.patience)):
            return True
    return False


def _check_same_run(out: Path, cfg: TrainConfig) -> None:
    from mmlatch.training.config import read_yaml

    saved = TrainConfig.from_dict(read_yaml(out / "config.yaml"), where=str(out / "config.yaml"))
    if saved.identity() != cfg.identity():
        diff = sorted(k for k, v in cfg.identity().items() if saved.identity().get(k) != v)
        raise RunError(
            f"{out} holds a run with different settings ({', '.join(diff)}); "
            f"use another --out, or --no-resume to start it afresh"
        )


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Train, select the best epoch on validation loss, evaluate valid and test, save all.

    Args:
        cfg: the run's settings.
        out_dir: the run directory (created).
        resume: continue from ``checkpoints/last.ckpt`` when the directory holds an
            interrupted run with the same settings (same results as an uninterrupted run on
            CPU); False starts afresh, overwriting.
        evaluate_test: also score the test split (hyperparameter search turns it off).
    Returns:
        The content of ``metrics.json`` (an empty dict on non-zero DDP ranks).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    last = out / "checkpoints" / "last.ckpt"
    resuming = resume and last.is_file() and (out / "config.yaml").is_file()
    if resuming:
        _check_same_run(out, cfg)
    elif (out / "checkpoints").is_dir():
        for old in (out / "checkpoints").glob("*.ckpt"):
            old.unlink()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dataset = load_data(cfg)
    model, spec = build_model(cfg, dataset)
    save_config(cfg, out / "config.yaml")
    write_json(out / "model.json", spec)

    _quiet_lightning()
    module = TaskModule(
        model, dataset.task, cfg.lr, cfg.weight_decay, cfg.lr_factor, cfg.lr_patience, cfg.seed
    )
    module.epoch_callback = lambda history: write_epoch_log(out / "log" / "metrics.csv", history)
    ckpt = ModelCheckpoint(
        dirpath=out / "checkpoints", filename="best", monitor="val_loss", mode="min", save_last=True
    )
    cuda = device.startswith("cuda")
    distributed = cfg.devices > 1 or cfg.num_nodes > 1
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        accelerator="gpu" if cuda else "cpu",
        devices=[int(device.split(":")[1])] if device.startswith("cuda:") else cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        callbacks=[ckpt, EarlyStopping(monitor="val_loss", mode="min", patience=cfg.patience)],
        logger=False,
        gradient_clip_val=cfg.grad_clip,
        enable_progress_bar=cfg.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=not cuda,
        log_every_n_steps=1,
    )
    train_loader = make_loader(dataset.split("train"), cfg.batch_size, shuffle=True, seed=cfg.seed)
    valid_loader = make_loader(dataset.split("valid"), cfg.batch_size, shuffle=False)
    timing_file = out / "timing.json"
    previous = json.loads(timing_file.read_text())["seconds"] if resuming and timing_file.is_file() else 0.0
    start = time.perf_counter()
    if resuming and _finished_training(last, cfg):
        state = torch.load(last, map_location="cpu", weights_only=True)
        module.on_load_checkpoint(state)
        best_path = out / "checkpoints" / "best.ckpt"
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*number of training batches.*")
            warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")
            trainer.fit(module, train_loader, valid_loader, ckpt_path=str(last) if resuming else None)
        if not trainer.is_global_zero:
            return {}
        best_path = Path(ckpt.best_model_path)
    seconds = previous + time.perf_counter() - start

    # The best weights: from the best checkpoint, loaded without a full unpickler.
    state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    model.load_state_dict(weights)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    if distributed:
        device = "cuda" if cuda else "cpu"  # final scoring runs in this one process

    history = module.history
    val_losses = [row.get("val_loss", math.inf) for row in history]
    result = {
        "model": cfg.model,
        "data": cfg.data,
        "seed": cfg.seed,
        "params": count_parameters(model),
        "best_epoch": int(np.argmin(val_losses)) + 1 if val_losses else 0,
        "epochs_run": len(history),
        "valid": evaluate_model(model, dataset, "valid", device),
        "test": evaluate_model(model, dataset, "test", device) if evaluate_test else {},
    }
    write_json(timing_file, {"seconds": seconds, "device": device})
    write_json(out / "metrics.json", result)
    return result


def load_run_model(run_dir: str | Path) -> tuple[nn.Module, dict[str, Any], TrainConfig]:
    """Rebuild a finished run's model with its best weights.

    Returns:
        (model in eval mode, the ``model.json`` spec, the run's config).
    """
    from mmlatch.training.config import read_yaml

    run = Path(run_dir)
    for name in ("model.json", "model.safetensors", "config.yaml"):
        if not (run / name).is_file():
            raise RunError(f"run directory {str(run)!r} has no {name}: is it a finished run?")
    spec = json.loads((run / "model.json").read_text())
    cfg = TrainConfig.from_dict(read_yaml(run / "config.yaml"), where=str(run / "config.yaml"))
    model = create_model(spec["model"], spec["modality_dims"], **spec["model_args"])
    if spec.get("standardize") is not None:
        model = _standardized(model, spec)
    model.load_state_dict(load_file(str(run / "model.safetensors")))
    return model.eval(), spec, cfg


def evaluate_run(
    run_dir: str | Path, data: str | None = None, split: str = "test", device: str = "auto"
) -> dict[str, float]:
    """Metrics of a finished run's best weights on ``split`` of its data (or ``data``)."""
    model, spec, cfg = load_run_model(run_dir)
    dataset = load_data(cfg, data)
    if dataset.modality_dims != spec["modality_dims"]:
        raise RunError(
            f"data modalities {dataset.modality_dims} do not match the run's {spec['modality_dims']}"
        )
    if TaskSpec.from_dict(spec["task"]) != dataset.task:
        raise RunError(f"data task {dataset.task} does not match the run's {spec['task']}")
    return evaluate_model(model, dataset, split, resolve_device(device))


__all__ = [
    "RunError",
    "TaskSpec",
    "evaluate_model",
    "evaluate_run",
    "load_run_model",
    "predict_split",
    "resolve_device",
    "train",
    "write_json",
]
