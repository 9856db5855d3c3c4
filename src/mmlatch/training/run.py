"""Train a configured run into a directory, and evaluate a finished run.

:func:`train_unlocked` is the training recipe, read top to bottom: resolve the config, read
the data, build the model, fit (Lightning), keep the best weights, score, save. The run
directory's layout, atomic saving, loading, resume state, lock and integrity belong to
:mod:`mmlatch.rundir`; the inference loop to :mod:`mmlatch.training.inference`.

While a run is trained its directory is locked (``.lock``, :mod:`mmlatch.rundir`): a second
writer is refused. A failed write (full disk ...) stops the run with one line; what was saved
before is intact and re-running the same command resumes.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mmlatch import rundir
from mmlatch.data import DataError, MultimodalDataset, TaskSpec, load_dataset
from mmlatch.data.batching import make_loader
from mmlatch.data.standardize import FeatureStats, auto_stats, describe_auto, fit_feature_stats
from mmlatch.models import count_parameters, create_model, get_entry, model_arguments
from mmlatch.files import WriteError, write_json, write_text
from mmlatch.files import exception_line as _one_line
from mmlatch.files import to_stderr as _stderr
from mmlatch.modules.pretrained_text import NO_TEXT, reads_text
from mmlatch.modules.standardize import Standardized
from mmlatch.rundir import RunError, check_weights, read_model_json, write_failure
from mmlatch.training.config import ConfigError, TrainConfig, model_defaults_used, save_config
from mmlatch.training.inference import evaluate_model, predict_split
from mmlatch.training.precision import (
    precision_record,
    resolve_inference_precision,
    resolve_train_precision,
)
from mmlatch.training.threads import ThreadChoice, configure_threads


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but no CUDA device is available")
    return device


def write_epoch_log(path: Path, history: list[dict[str, float]]) -> None:
    """The per-epoch CSV (one row per epoch, epochs counted from 1), rewritten atomically."""
    import pandas as pd

    frame = pd.DataFrame(history)
    frame.insert(0, "epoch", range(1, len(history) + 1))
    write_text(path, frame.to_csv(index=False))


def _quiet_lightning() -> None:
    """Silence Lightning's start-up banners (GPU/TPU availability, tips); keep warnings."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\).*")
    # a frozen pretrained text encoder (text_lr 0) stays in eval mode on purpose
    warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode at the start of training.*")


def load_data(cfg: TrainConfig, data: str | None = None, run: str | None = None) -> MultimodalDataset:
    """The dataset a config names, or ``data`` instead (then without the config's reader
    options, which belong to the config's own data).

    Args:
        run: the run directory the config came from: when its data path is gone, the error
            says so and that ``--data`` replaces it.
    """
    if data and data != cfg.data:
        return load_dataset(data, modalities=cfg.modalities)
    if run is not None and cfg.data != "synthetic" and not os.path.exists(cfg.data):
        raise RunError(
            f"{cfg.data}: no such file or directory; this data path comes from run {run!r} "
            f"(its config.yaml): pass --data PATH to use the data where it is now"
        )
    return load_dataset(cfg.data, modalities=cfg.modalities, **cfg.data_args)


def build_model(cfg: TrainConfig, dataset: MultimodalDataset) -> tuple[nn.Module, dict[str, Any]]:
    """The configured model for this dataset, and its complete ``model.json`` description."""
    args = dict(cfg.model_args)
    if get_entry(cfg.model).topdown:
        args = {**cfg.topdown_args, **args}
    args["num_outputs"] = dataset.task.num_outputs
    try:
        model = create_model(cfg.model, dataset.modality_dims, **args)
    except (ValueError, TypeError) as exc:
        raise ConfigError(_model_setting_error(cfg, exc)) from None
    if not dataset.has_texts and reads_text(model):  # before any training: one line saying what is missing
        raise DataError(f"{cfg.data}: model {cfg.model!r}: {NO_TEXT}")
    init_bias = getattr(model, "init_output_bias", None)
    if init_bias is not None and dataset.task.kind == "regression":
        # models that ask for it (the classic ones) start predicting the training labels' mean
        init_bias(torch.as_tensor(np.asarray(dataset.split("train").labels, dtype=np.float64).mean(axis=0)))
    full_args = model_arguments(cfg.model)
    full_args.update({k: v for k, v in args.items() if v is not None})
    spec = {
        "model": cfg.model,
        "model_args": full_args,
        "modality_dims": dataset.modality_dims,
        "task": asdict(dataset.task),
    }
    own = model_defaults_used(cfg)
    if own:  # the model's own training defaults this run uses (the rest are the config's or generic)
        spec["training_defaults"] = own
    if dataset.extraction is not None:  # features from `mmlatch extract`: predict --media re-extracts with it
        spec["extraction"] = dataset.extraction
    if cfg.standardize == "auto":  # the off-scale modalities only; the reasons kept for the log
        stats, reasons = auto_stats(dataset.split("train"))
        if stats is not None:
            spec["standardize"] = stats.to_dict()
        spec["standardize_auto"] = reasons
    elif cfg.standardize:
        spec["standardize"] = fit_feature_stats(dataset.split("train")).to_dict()
    if spec.get("standardize") is not None:  # training-split statistics, stored with the run and applied in the model
        model = _standardized(model, spec)
    return model, spec


def _standardized(model: nn.Module, spec: dict[str, Any]) -> nn.Module:
    """``model`` behind the run's stored standardisation (``spec["standardize"]``)."""
    stats = FeatureStats.from_dict(spec["standardize"], where="model.json: standardize")
    return Standardized(model, stats.mean, stats.std)


def describe_training_defaults(model: str, used: dict[str, Any]) -> str:
    """The one line a run prints when it trains with its model's own training defaults."""
    values = ", ".join(f"{k} {v}" for k, v in used.items())
    return f"training defaults of {model}: {values} (the model's own; --set KEY=VALUE or a config changes them)"


def _model_setting_error(cfg: TrainConfig, exc: Exception) -> str:
    """A model builder's error (often PyTorch's, naming no setting) with the setting named."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    given = {f"model_args.{k}": v for k, v in cfg.model_args.items()}
    if get_entry(cfg.model).topdown:
        given.update({f"topdown_args.{k}": v for k, v in cfg.topdown_args.items() if k not in cfg.model_args})
    named = [f"{k}={v!r}" for k, v in given.items() if repr(v) in text or str(v) in text.split()]
    if len(named) == 1:
        return f"{named[0]}: {text} (model {cfg.model!r})"
    settings = ", ".join(f"{k}={v!r}" for k, v in given.items()) or "its defaults"
    return f"model {cfg.model!r} cannot be built with {settings}: {text}"


def read_checkpoint(path: Path, hint: str = "") -> dict[str, Any]:
    """A Lightning checkpoint, loaded with ``weights_only=True``; RunError naming the file
    when it is truncated, not a checkpoint, or differs from its recorded SHA-256."""
    from mmlatch.training.checkpoint_io import ChecksumError, check_checkpoint

    try:
        check_checkpoint(path)
    except ChecksumError as exc:
        raise RunError(f"{exc}{hint}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError ...
        raise RunError(f"{path}: not a readable checkpoint ({_one_line(exc)}){hint}") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise RunError(f"{path}: not a Lightning checkpoint (no state_dict){hint}")
    return state


def _finished_training(state: dict[str, Any], cfg: TrainConfig) -> bool:
    """True when a ``last.ckpt`` state records a fit that already ended (max epochs or early stop)."""
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




class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C / SIGINT); the message names the epoch and how to resume."""


def _epoch_line(history: list[dict[str, float]], epochs: int, seconds: float) -> str:
    """``epoch 3/12: train_loss 0.812, val_loss 0.790, val_mae 0.790 (4.1 s)``."""
    row = history[-1]
    shown = ["train_loss", "val_loss", *(k for k in ("val_mae", "val_acc", "val_f1") if k in row)]
    values = ", ".join(f"{k} {row[k]:.4f}" for k in shown if k in row and row[k] is not None)
    return f"epoch {len(history)}/{epochs}: {values} ({seconds:.1f} s)"


def _progress_bar() -> Any:
    """Lightning's progress bar, counting epochs from 1 like every file of the run."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    class EpochFromOne(TQDMProgressBar):
        def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
            super().on_train_epoch_start(trainer, *args)
            self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

    return EpochFromOne()


def _tensorboard_logger(out: Path) -> Any:
    """Lightning's TensorBoard logger writing to ``OUT/tensorboard`` (needs ``tensorboard``)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    try:
        return TensorBoardLogger(save_dir=str(out), name="tensorboard", version="", default_hp_metric=False)
    except ModuleNotFoundError as exc:
        raise RunError(f"tensorboard logging needs the tensorboard package: pip install 'mmlatch[tensorboard]' ({exc})") from None


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    evaluate_test: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """:func:`train_unlocked` holding the run directory's writer lock (:mod:`mmlatch.rundir`).

    Raises:
        LockedError: another process writes ``out_dir`` (the message names it).
        RunError: a write failed (disk full, file too large, I/O error, permission): one line
            naming the file and why; what was saved before is intact and re-running resumes.
    """
    from mmlatch.rundir import writer_lock

    out = Path(out_dir)
    with writer_lock(out):
        try:
            return train_unlocked(cfg, out, resume=resume, evaluate_test=evaluate_test, log=log)
        except WriteError as exc:
            raise RunError(write_failure(exc, out)) from None


def _precisions(cfg: TrainConfig, device: str, n_modalities: int, say: Callable[[str], None]) -> tuple[str, str]:
    """The training and scoring precisions a run uses on ``device``."""
    try:
        return (
            resolve_train_precision(cfg.precision, device, cfg.model, say, n_modalities),
            resolve_inference_precision(cfg.eval_precision, device, cfg.model, say, n_modalities),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def train_unlocked(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    evaluate_test: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train, select the best epoch on validation loss, evaluate valid and test, save all.

    Says what it does through ``log`` (default: standard error): ``resuming from epoch k``,
    ``already finished: nothing to do``, one line per epoch when there is no progress bar
    (``cfg.progress`` and standard error is not a terminal), and on Ctrl-C raises
    :class:`TrainingInterrupted` ("interrupted at epoch k; re-run the same command to resume").

    Args:
        cfg: the run's settings (a relative data path is stored resolved, see
            :meth:`TrainConfig.resolved`).
        out_dir: the run directory (created once the data is read and the model built, so a
            command that fails on its input leaves no empty directory).
        resume: a directory holding this run finished returns its ``metrics.json``; one
            holding it interrupted continues from ``checkpoints/last.ckpt`` (same results as
            an uninterrupted run on CPU); False starts afresh, overwriting. Another run's
            directory is an error either way unless False.
        evaluate_test: also score the test split (hyperparameter search turns it off).
        log: where the messages go.
    Returns:
        The content of ``metrics.json`` (an empty dict on non-zero DDP ranks).
    """
    say = log or _stderr
    out = Path(out_dir)
    cfg = cfg.resolved()
    threads = configure_threads(cfg.threads)
    device = resolve_device(cfg.device)
    state = rundir.resume_state(out) if resume else "empty"
    if state == "finished":
        _check_same_run(out, cfg)
        say(f"{out}: already finished: nothing to do (--no-resume trains it again)")
        return rundir.read_metrics(out)
    resuming = state == "unfinished"
    last = out / rundir.LAST_CHECKPOINT
    last_state: dict[str, Any] = {}
    if resuming:
        _check_same_run(out, cfg)
        last_state = read_checkpoint(last, "; delete it, or use --no-resume, to start the run afresh")
    dataset = load_data(cfg)  # first: bad data is answered before Lightning is imported
    # after the data: auto precision depends on how many modalities it has
    precision, eval_precision = _precisions(cfg, device, len(dataset.modality_dims), say)
    import lightning as L  # seconds to import: only once the input is known to be good

    from mmlatch.training.module import TaskModule

    L.seed_everything(cfg.seed, workers=True, verbose=False)  # readers use their own RNGs
    model, spec = build_model(cfg, dataset)
    if "standardize_auto" in spec:
        say(describe_auto(spec["standardize_auto"], list(dataset.modality_dims)))
    if "training_defaults" in spec:
        say(describe_training_defaults(cfg.model, spec["training_defaults"]))
    out.mkdir(parents=True, exist_ok=True)
    if not resuming:
        rundir.fresh_start(out)
    save_config(cfg, out / rundir.CONFIG)
    write_json(out / rundir.MODEL_JSON, spec)
    write_json(out / rundir.ENVIRONMENT, environment(device, threads, precision_record(precision, eval_precision)))

    _quiet_lightning()
    module = TaskModule(
        model, dataset.task, cfg.lr, cfg.weight_decay, cfg.lr_factor, cfg.lr_patience, cfg.seed
    )
    bar = cfg.progress and sys.stderr.isatty()
    module.epoch_callback = _epoch_reporter(cfg, out, say, lines=cfg.progress and not bar)
    trainer, ckpt = _trainer(cfg, out, model, device, precision, bar)
    cuda = device.startswith("cuda")
    train_loader = make_loader(
        dataset.split("train"), cfg.batch_size, shuffle=True, seed=cfg.seed, pin_memory=cuda, batching=cfg.batching
    )
    valid_loader = make_loader(dataset.split("valid"), cfg.batch_size, shuffle=False, pin_memory=cuda)
    previous = rundir.previous_seconds(out) if resuming else 0.0
    start = time.perf_counter()
    if resuming and _finished_training(last_state, cfg):
        module.on_load_checkpoint(last_state)
        best_path = out / rundir.BEST_CHECKPOINT
    else:
        if resuming:
            say(f"{out}: resuming from epoch {int(last_state.get('epoch', -1)) + 2} (checkpoints/last.ckpt)")
        _fit(trainer, module, train_loader, valid_loader, str(last) if resuming else None)
        if not trainer.is_global_zero:
            return {}
        best_path = Path(ckpt.best_model_path)
    seconds = previous + time.perf_counter() - start

    # The best weights: from the best checkpoint, loaded without a full unpickler.
    state_dict = read_checkpoint(best_path)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state_dict.items() if k.startswith("model.")})
    rundir.save_weights(out, model.state_dict(), spec)
    if cfg.devices > 1 or cfg.num_nodes > 1:
        device = "cuda" if cuda else "cpu"  # final scoring runs in this one process
    scoring = (device, eval_precision, evaluate_test)
    return _score_and_save(cfg, out, model, module.history, dataset, precision, scoring, seconds)


def _score_and_save(
    cfg: TrainConfig, out: Path, model: nn.Module, history: list[dict[str, float]], dataset: MultimodalDataset,
    precision: str, scoring: tuple[str, str, bool], seconds: float,
) -> dict[str, Any]:
    """Score the best weights (``scoring``: device, inference precision, whether to score
    test), write ``timing.json`` and ``metrics.json``, drop ``last.ckpt`` unless kept.

    Returns:
        The content of ``metrics.json``.
    """
    device, eval_precision, evaluate_test = scoring
    result = {
        "model": cfg.model,
        "data": cfg.data,
        "seed": cfg.seed,
        "params": count_parameters(model),
        **_epochs(history),
        "valid": evaluate_model(model, dataset, "valid", device, eval_precision),
        "test": evaluate_model(model, dataset, "test", device, eval_precision) if evaluate_test else {},
        "precision": precision_record(precision, eval_precision),
    }
    write_json(out / rundir.TIMING, {"seconds": seconds, "device": device})
    write_json(out / rundir.METRICS, result)
    if not cfg.keep_last:
        from mmlatch.training.checkpoint_io import AtomicCheckpointIO

        AtomicCheckpointIO().remove_checkpoint(out / rundir.LAST_CHECKPOINT)  # only an unfinished run needs it
    return result


def _epochs(history: list[dict[str, float]]) -> dict[str, int]:
    """``best_epoch`` (lowest validation loss, counted from 1; 0 without epochs) and ``epochs_run``."""
    val_losses = [row.get("val_loss", math.inf) for row in history]
    return {"best_epoch": int(np.argmin(val_losses)) + 1 if val_losses else 0, "epochs_run": len(history)}


def _epoch_reporter(
    cfg: TrainConfig, out: Path, say: Callable[[str], None], lines: bool
) -> Callable[[list[dict[str, float]]], None]:
    """What runs after every epoch: the epoch log rewritten, TensorBoard fed, one line said
    (``lines``: when there is no progress bar)."""
    tb = _tensorboard_logger(out) if cfg.tensorboard else None
    epoch_start = [time.perf_counter()]

    def after_epoch(history: list[dict[str, float]]) -> None:
        write_epoch_log(out / rundir.EPOCH_LOG, history)
        if tb is not None:
            tb.log_metrics({k: v for k, v in history[-1].items() if v is not None and math.isfinite(v)}, step=len(history))
            tb.save()
        if lines:
            say(_epoch_line(history, cfg.epochs, time.perf_counter() - epoch_start[0]))
        epoch_start[0] = time.perf_counter()

    return after_epoch


def _trainer(cfg: TrainConfig, out: Path, model: nn.Module, device: str, precision: str, bar: bool) -> tuple[Any, Any]:
    """The Lightning Trainer of a run and its best/last checkpoint callback (``model`` is
    compiled in place when ``cfg.compile``)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from mmlatch.training.checkpoint_io import AtomicCheckpointIO

    ckpt = ModelCheckpoint(
        dirpath=out / rundir.CHECKPOINTS, filename="best", monitor="val_loss", mode="min", save_last=True
    )
    cuda = device.startswith("cuda")
    if cfg.compile:
        model.compile()  # in place: parameter names (and so checkpoints) stay as they are
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        accelerator="gpu" if cuda else "cpu",
        devices=[int(device.split(":")[1])] if device.startswith("cuda:") else cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=precision,
        callbacks=[ckpt, EarlyStopping(monitor="val_loss", mode="min", patience=cfg.patience)]
        + ([_progress_bar()] if bar else []),
        logger=False,
        gradient_clip_val=cfg.grad_clip,
        enable_progress_bar=bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=not cuda,
        log_every_n_steps=1,
        plugins=[AtomicCheckpointIO()],  # atomic, checksummed checkpoints
    )
    return trainer, ckpt


def _fit(trainer: Any, module: Any, train_loader: Any, valid_loader: Any, ckpt_path: str | None) -> None:
    """``trainer.fit``; Ctrl-C becomes :class:`TrainingInterrupted` naming the epoch (Lightning
    catches KeyboardInterrupt and exits 1 without a word)."""
    import signal
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*number of training batches.*")
            warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")
            trainer.fit(module, train_loader, valid_loader, ckpt_path=ckpt_path)
    except (KeyboardInterrupt, SystemExit) as exc:
        if isinstance(exc, SystemExit) and not trainer.interrupted:
            raise
        raise TrainingInterrupted(
            f"interrupted at epoch {trainer.current_epoch + 1}; re-run the same command to resume"
        ) from None
    finally:
        if main_thread and handler is not None:
            signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after an interrupt


def environment(
    device: str, threads: ThreadChoice | None = None, precision: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What ran a run: package versions, the mmlatch source's git commit, the machine, how
    its torch thread count was chosen (``threads``: count, source, cores, load) and the
    precisions it used (``precision``: train, inference, whether the CPU has native bf16)."""
    import importlib.metadata
    import platform
    import socket
    import subprocess

    versions = {}
    for name in ("mmlatch", "torch", "lightning", "numpy", "scikit-learn", "scipy", "pandas", "safetensors", "h5py"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    source = Path(__file__).resolve().parents[1]  # the mmlatch package's folder
    commit, dirty = None, None
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip() or None
        if commit:
            status = subprocess.run(
                ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=10,
            ).stdout
            dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "packages": versions,
        "git_commit": commit,
        "git_dirty": dirty,
        "source": str(source),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "threads": threads.to_dict() if threads is not None else None,
        "device": device,
        "precision": precision,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def load_run_model(run_dir: str | Path) -> tuple[nn.Module, dict[str, Any], TrainConfig]:
    """Rebuild a finished run's model with its best weights.

    Returns:
        (model in eval mode, the ``model.json`` spec, the run's config).
    Raises:
        RunError: a missing or corrupt ``model.json``, ``model.safetensors`` or
            ``config.yaml`` (the message names the file and what is wrong).
    """
    from mmlatch.training.config import ConfigError, read_yaml

    run = rundir.require_run_files(run_dir)
    spec = rundir.read_model_json(run)
    cfg_file = run / rundir.CONFIG
    try:
        cfg = TrainConfig.from_dict(read_yaml(cfg_file), where=str(cfg_file))
    except (ConfigError, TypeError) as exc:
        raise RunError(f"{cfg_file}: not a readable run config ({_one_line(exc)})") from None
    try:
        model = create_model(spec["model"], spec["modality_dims"], **spec["model_args"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunError(f"{run / 'model.json'}: the model cannot be rebuilt from it ({_one_line(exc)})") from None
    if spec.get("standardize") is not None:
        try:
            model = _standardized(model, spec)
        except DataError as exc:
            raise RunError(f"{run / 'model.json'}: its standardisation statistics are unreadable ({_one_line(exc)})") from None
    weights = rundir.read_weights(run, spec)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise RunError(f"{run / rundir.WEIGHTS}: weights do not fit the model of model.json ({_one_line(exc)})") from None
    return model.eval(), spec, cfg


def check_task(dataset: MultimodalDataset, spec: dict[str, Any], run: str) -> None:
    """RunError in words when the data's task is not the run's (labels of another kind)."""
    ours = TaskSpec.from_dict(spec["task"])
    theirs = dataset.task
    if ours == theirs:
        return
    raise RunError(
        f"data {dataset.name!r} is labelled for another task ({describe_task(theirs)}) than run {run!r} "
        f"was trained for ({describe_task(ours)}), so its labels cannot be scored; "
        f"`mmlatch predict` gives predictions without scoring"
    )


def describe_task(task: TaskSpec) -> str:
    """A task in words: ``regression of sentiment in [-3, 3]``, ``classification into 2 classes (neg, pos)``."""
    names = list(task.label_names or [])
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    if task.kind == "classification":
        return f"classification into {task.num_outputs} classes ({shown})"
    if task.kind == "multilabel":
        return f"{task.num_outputs} binary labels ({shown})"
    where = f" in [{task.label_range[0]:g}, {task.label_range[1]:g}]" if task.label_range else ""
    return f"regression of {shown if len(names) <= 4 else f'{len(names)} columns ({shown})'}{where}"


def evaluate_run(
    run_dir: str | Path, data: str | None = None, split: str = "test", device: str = "auto",
    precision: str = "auto", log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Metrics of a finished run's best weights on ``split`` of its data (or ``data``), the
    forward passes in ``precision`` (``auto`` | ``32`` | ``bf16``; ``auto`` resolves as the
    run's own scoring did on the same machine; ``log`` hears the note when bf16 falls back)."""
    model, spec, cfg = load_run_model(run_dir)
    dataset = load_data(cfg, data, run=str(run_dir))
    if dataset.modality_dims != spec["modality_dims"]:
        raise RunError(
            f"data modalities {dataset.modality_dims} do not match the run's {spec['modality_dims']}"
        )
    check_task(dataset, spec, str(run_dir))
    dev = resolve_device(device)
    chosen = resolve_inference_precision(precision, dev, spec["model"], log or _stderr, len(spec["modality_dims"]))
    return evaluate_model(model, dataset, split, dev, chosen)


__all__ = [
    "RunError",
    "check_weights",
    "train_unlocked",
    "write_failure",
    "TaskSpec",
    "TrainingInterrupted",
    "check_task",
    "describe_task",
    "environment",
    "read_checkpoint",
    "read_model_json",
    "evaluate_model",
    "evaluate_run",
    "load_run_model",
    "predict_split",
    "resolve_device",
    "train",
    "write_json",
]
