"""Run configuration: a dataclass read from YAML, with ``key=value`` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override is malformed; the message says which key."""


#: Lightning precisions a run may use (``auto``: see mmlatch.training.precision)
PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")
#: precisions of a run's scoring and of inference commands
EVAL_PRECISIONS = ("auto", "32", "bf16")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved resolved as ``config.yaml``).

    The field defaults are the generic ones. :meth:`from_dict` and :func:`load_config` (what
    the CLI, experiments and searches use) fill the keys a mapping leaves out with the model's
    own training defaults first, where it declares some (``mult``: batch 24, lr 1e-3, ...;
    :func:`model_training_defaults`); the constructor does not (``TrainConfig(model="mult")``
    has the generic ones).

    Attributes:
        model: registered model name (``mmlatch models``).
        model_args: builder arguments of the model (``hidden``, ``dropout``, ...).
        topdown_args: options applied only when the model is a top-down one (``stage1_grad``,
            ``feedback_gate_bias``, ...), under ``model_args``; other models ignore them, so one
            config can serve a baseline and its top-down variant.
        data: ``synthetic`` or a path to data on disk.
        data_args: reader options (synthetic: ``n_train``, ``seed``, ...).
        modalities: keep only these modalities (default: all of the data's).
        standardize: ``auto`` (default): standardise, with the training split's mean and std,
            each modality whose features are not on a unit scale (the rule:
            :func:`mmlatch.data.standardize.off_unit_scale`); ``true``: every modality;
            ``false``: none (:mod:`mmlatch.data.standardize`). The statistics are stored in
            ``model.json`` and applied by the model, so evaluation and prediction use the same ones.
        seed: seeds Python, numpy, torch and the batch order.
        epochs: maximum number of epochs.
        batch_size, lr, weight_decay: optimiser settings (Adam).
        lr_factor, lr_patience: ReduceLROnPlateau on the validation loss.
        patience: early stopping patience (epochs without validation-loss improvement).
        grad_clip: gradient norm clipping (None: off).
        device: ``auto``, ``cpu`` or ``cuda``.
        devices, num_nodes, strategy: Lightning's distributed settings (e.g. 2 devices with
            ``ddp``: one process per device; on CPU, processes with the gloo backend).
        threads: torch CPU threads (None: chosen to fit the free cores, see
            :mod:`mmlatch.training.threads`; ``OMP_NUM_THREADS`` still wins).
        precision: Lightning's precision: ``auto`` (default: ``bf16-mixed`` for the models
            measured to keep their accuracy, on a CPU with native bfloat16; else ``32``),
            ``32``, ``bf16-mixed`` (float32 with a note where bfloat16 is not native) or
            ``16-mixed`` (CUDA only); see :mod:`mmlatch.training.precision`.
        batching: order of the training batches: ``shuffle`` (default) or ``bucket``
            (shuffled, then sorted by length inside buckets of 50 batches, the batches
            shuffled: less padding; see :class:`mmlatch.data.batching.BucketBatchSampler`).
        eval_precision: precision of the validation/test scoring after training: ``auto``
            (default, chosen the same way), ``32`` or ``bf16``.
        compile: ``torch.compile`` the model before training (opt-in; the weights and
            results files are the same as without it).
        progress: show progress: a progress bar on a terminal, else one line per epoch.
        tensorboard: also log every epoch's row to ``OUT/tensorboard`` (Lightning's
            TensorBoard logger; needs ``pip install 'mmlatch[tensorboard]'``).
        keep_last: keep ``checkpoints/last.ckpt`` after the run finished (it is needed only
            to resume an unfinished run; ``best.ckpt`` and ``model.safetensors`` stay).
    """

    model: str = "mmlatch"
    model_args: dict[str, Any] = field(default_factory=dict)
    topdown_args: dict[str, Any] = field(default_factory=dict)
    data: str = "synthetic"
    data_args: dict[str, Any] = field(default_factory=dict)
    modalities: list[str] | None = None
    standardize: bool | str = "auto"
    seed: int = 0
    epochs: int = 100
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.0
    lr_factor: float = 0.5
    lr_patience: int = 2
    patience: int = 10
    grad_clip: float | None = None
    device: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    threads: int | None = None
    precision: str = "auto"
    eval_precision: str = "auto"
    batching: str = "shuffle"
    compile: bool = False
    progress: bool = True
    tensorboard: bool = False
    keep_last: bool = False
    #: not a setting (never read from a mapping, never saved): the keys :meth:`from_dict`
    #: filled from the model's own training defaults, for the run's record
    model_defaults: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("model_defaults")
        return d

    def identity(self) -> dict[str, Any]:
        """The settings that determine a run's results (not progress, logging, thread counts
        or kept files); data paths compared resolved (see :meth:`resolved`)."""
        d = self.resolved().to_dict()
        for key in ("progress", "threads", "compile", "tensorboard", "keep_last", "eval_precision"):
            d.pop(key)  # eval_precision: the scoring's arithmetic, not the run's weights
        return d

    def resolved(self) -> TrainConfig:
        """A copy whose data path (and ``data_args.folds``) is absolute, resolved against the
        working directory: what a run directory stores, so it works from anywhere."""
        out = dataclasses.replace(self, data_args=dict(self.data_args))
        out.data = absolute_path(self.data)
        if isinstance(out.data_args.get("folds"), str):
            out.data_args["folds"] = absolute_path(out.data_args["folds"])
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build from a mapping; unknown keys and wrong types raise ConfigError.

        Keys the mapping leaves out take the model's own training defaults where it declares
        them (:func:`model_training_defaults`), else the generic defaults of this class."""
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a mapping of settings, got {type(values).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls) if f.name != "model_defaults"}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(names)}")
        model = values.get("model", cls.model)
        own = {k: v for k, v in (model_training_defaults(model) if isinstance(model, str) else {}).items() if k not in values}
        cfg = cls(**{**own, **values}, model_defaults=tuple(own))
        cfg.validate(where)
        return cfg

    def validate(self, where: str = "config") -> None:
        """Type and range checks with messages naming the key."""
        def need(cond: bool, key: str, what: str) -> None:
            if not cond:
                raise ConfigError(f"{where}: {key} must be {what}, got {getattr(self, key)!r}")

        need(isinstance(self.model, str) and bool(self.model), "model", "a model name")
        need(isinstance(self.model_args, dict), "model_args", "a mapping")
        need(isinstance(self.topdown_args, dict), "topdown_args", "a mapping")
        from mmlatch.models.registry import TOPDOWN_ARGUMENTS

        unknown = sorted(set(self.topdown_args) - set(TOPDOWN_ARGUMENTS))
        need(not unknown, "topdown_args", f"options of top-down models {sorted(TOPDOWN_ARGUMENTS)} (got {unknown})")
        need(isinstance(self.data, str) and bool(self.data), "data", "'synthetic' or a path")
        need(isinstance(self.data_args, dict), "data_args", "a mapping")
        need(self.modalities is None or (isinstance(self.modalities, list) and all(isinstance(m, str) for m in self.modalities)),
             "modalities", "a list of modality names")
        need(isinstance(self.standardize, bool) or self.standardize == "auto", "standardize", "auto, true or false")
        for key in ("seed", "epochs", "batch_size", "lr_patience", "patience"):
            need(isinstance(getattr(self, key), int) and not isinstance(getattr(self, key), bool), key, "an integer")
        need(self.epochs >= 1, "epochs", ">= 1")
        need(self.batch_size >= 1, "batch_size", ">= 1")
        for key in ("lr", "weight_decay", "lr_factor"):
            need(isinstance(getattr(self, key), (int, float)) and not isinstance(getattr(self, key), bool), key, "a number")
        need(self.lr > 0, "lr", "> 0")
        need(0 < self.lr_factor < 1, "lr_factor", "in (0, 1)")
        need(self.grad_clip is None or (isinstance(self.grad_clip, (int, float)) and self.grad_clip > 0), "grad_clip", "a positive number or null")
        need(self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:"), "device", "auto, cpu or cuda")
        need(isinstance(self.devices, int) and self.devices >= 1, "devices", "a positive integer")
        need(isinstance(self.num_nodes, int) and self.num_nodes >= 1, "num_nodes", "a positive integer")
        need(isinstance(self.strategy, str) and bool(self.strategy), "strategy", "a Lightning strategy name")
        need(self.threads is None or (isinstance(self.threads, int) and self.threads >= 1), "threads", "a positive integer or null")
        need(str(self.precision) in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}")
        self.precision = str(self.precision)
        need(str(self.eval_precision) in EVAL_PRECISIONS, "eval_precision", f"one of {', '.join(EVAL_PRECISIONS)}")
        self.eval_precision = str(self.eval_precision)
        need(self.batching in ("shuffle", "bucket"), "batching", "shuffle or bucket")
        for key in ("progress", "compile", "tensorboard", "keep_last"):
            need(isinstance(getattr(self, key), bool), key, "true or false")


#: the settings a registered model may declare training defaults for (``register_model(...,
#: training=...)``); the others (data, device, seed, ...) are the user's alone
MODEL_DEFAULT_KEYS = (
    "epochs", "batch_size", "lr", "weight_decay", "lr_factor", "lr_patience", "patience", "grad_clip", "batching",
)


def model_training_defaults(model: str) -> dict[str, Any]:
    """The training defaults ``model`` declares (empty for an unknown name or a model that
    declares none: the generic defaults of :class:`TrainConfig` apply)."""
    from mmlatch.models import get_entry

    try:
        own = dict(get_entry(model).training)
    except KeyError:
        return {}  # validate/build_model name the unknown model
    stray = sorted(set(own) - set(MODEL_DEFAULT_KEYS))
    if stray:
        raise ConfigError(f"model {model!r} declares training defaults {stray}, which are no model's to set")
    return own


def model_defaults_used(cfg: TrainConfig) -> dict[str, Any]:
    """The settings of ``cfg`` that came from its model's own training defaults (key -> value;
    see :meth:`TrainConfig.from_dict`)."""
    return {k: getattr(cfg, k) for k in cfg.model_defaults}


def absolute_path(value: str) -> str:
    """``value`` as an absolute path (``~`` expanded); ``synthetic`` stays as it is."""
    import os

    if value == "synthetic" or not isinstance(value, str) or not value:
        return value
    return os.path.abspath(os.path.expanduser(value))


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], YAML-parsed value)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: cannot parse value: {exc}") from exc
    return key.split("."), value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` / ``section.key=value`` overrides to a nested dict (a new copy)."""
    out = yaml.safe_load(yaml.safe_dump(values))  # deep copy of plain data
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; ConfigError naming the file on any problem."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        values = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        what = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"config file {str(p)!r} is not valid YAML{at}: {what}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of settings")
    return values


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    **cli: Any,
) -> TrainConfig:
    """Generic defaults <- the model's training defaults <- YAML file <- ``--set`` overrides <-
    explicit CLI options (None = unset)."""
    values = read_yaml(path) if path else {}
    values = apply_overrides(values, list(overrides or []))
    values.update({k: v for k, v in cli.items() if v is not None})
    return TrainConfig.from_dict(values, where=str(path) if path else "config")


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write ``cfg`` as YAML (atomically, mode from the umask)."""
    from mmlatch.files import write_text

    write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
