"""Prediction with a finished run: a Python API for arrays and a reader for files without labels.

Python::

    import mmlatch
    run = mmlatch.load_run("runs/r")          # the model in eval mode, best weights
    out = run.predict({"text": x_t, "audio": x_a, "visual": x_v})   # (L, F) arrays: one sample
    out.prediction        # (num_outputs,) ; (B, num_outputs) for (B, L, F) arrays
    out.mask_means        # top-down models: modality -> mask mean over real steps and features

Padding is never guessed by :meth:`RunPredictor.predict`: without ``lengths`` and ``padding``
every step is real (a warning names the samples whose first or last steps are all zero, as
padding would be); ``lengths=`` gives the real steps (end padding, or ``padding="front"``);
``padding="end"|"front"`` alone finds the lengths from the all-zero steps on that side, as
the readers do (MulT's pickles and some MFN files pad at the front).

Files (``mmlatch predict --run DIR --data PATH``): every format the readers know is read by
them when it has labels (so predictions are exactly those ``mmlatch evaluate`` scores).
Files WITHOUT labels are read by :mod:`mmlatch.data.readers.unlabelled` (reading is the data
layer's job alone; its docstring lists the layouts, how missing lengths are found and how
NaN/inf features are handled). The CSV has ``split, id``, the prediction(s), the labels when the file has them,
and for top-down models ``mask_mean_<modality>`` (each sample's mask averaged over its real
steps and all features).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from mmlatch.analysis.collect import BATCH_SIZE, AnalysisError, SplitOutputs, collect_outputs, fit_dataset
from mmlatch.data import Split, TaskSpec, load_dataset
from mmlatch.data.readers import nonzero_steps, shift_to_front, strip_padding
from mmlatch.files import to_stderr as _stderr
from mmlatch.training.config import TrainConfig
from mmlatch.training.inference import infer
from mmlatch.training.precision import resolve_inference_precision
from mmlatch.training.run import describe_task, load_data, load_run_model, resolve_device


@dataclass
class Prediction:
    """Predictions for one sample or a batch.

    Attributes:
        prediction: (B, num_outputs) model outputs ((num_outputs,) for one sample): values
            for regression, logits for classification and multi-label tasks.
        mask_means: top-down models: modality -> (B,) (a float for one sample), the mask
            averaged over the sample's real steps and all features; None otherwise.
        unimodal: (B, n_modalities, num_outputs) unimodal predictions of models with them.
        gate: (B, n_modalities) modality gate weights of models with a gate.
    """

    prediction: np.ndarray
    mask_means: dict[str, Any] | None = None
    unimodal: np.ndarray | None = None
    gate: np.ndarray | None = None


class RunPredictor:
    """A finished run's model, ready to predict (see :func:`load_run`).

    Attributes:
        model: the model (eval mode) with the best weights.
        spec: the run's ``model.json``; ``config``: its ``config.yaml``.
        modalities: the model's modality order; ``modality_dims``: feature size of each.
        task: what the outputs mean.
        precision: the forward passes' precision (``32`` or ``bf16``; with an ONNX engine
            ``onnx-32`` or ``onnx-int8``).
        engine: ``torch``, ``onnx`` or ``onnx-int8`` (onnxruntime; predictions only, no masks).
    """

    def __init__(
        self, model: nn.Module, spec: dict[str, Any], config: TrainConfig, path: Path, device: str,
        precision: str = "32", engine: str = "torch",
    ) -> None:
        self.model = model.eval().to(device)
        self.engine = engine
        self.precision = {"onnx": "onnx-32", "onnx-int8": "onnx-int8"}.get(engine, precision)
        self._onnx: dict[bool, Any] = {}  # per_modality_lengths -> OnnxEngine, built on first use
        self.spec = spec
        self.config = config
        self.path = path
        self.device = device
        self.modality_dims: dict[str, int] = {k: int(v) for k, v in spec["modality_dims"].items()}
        self.modalities: list[str] = list(self.modality_dims)
        self.task = TaskSpec.from_dict(spec["task"])

    def __repr__(self) -> str:
        return f"RunPredictor({str(self.path)!r}, model={self.spec['model']!r}, modalities={self.modalities})"

    @property
    def label_width(self) -> int:
        return 1 if self.task.kind == "classification" else self.task.num_outputs

    def predict(
        self,
        features: Mapping[str, Any],
        lengths: int | Any | Mapping[str, Any] | None = None,
        batch_size: int = BATCH_SIZE,
        padding: str | None = None,
        texts: str | Sequence[str] | None = None,
    ) -> Prediction:
        """Predict one sample ((L, F) arrays) or a batch ((B, L, F) arrays).

        Args:
            features: modality -> array, every modality of the model (``modalities``).
            lengths: real steps: None, an int / (B,) array shared by the modalities, or
                modality -> int / (B,) array.
            batch_size: samples per forward pass.
            padding: where padded arrays are padded: ``"end"`` (real steps first) or
                ``"front"`` (real steps last, as MulT's pickles). With ``lengths`` it says
                which steps the lengths count (default ``"end"``); without, the lengths are
                found from the all-zero steps on that side. None and no lengths: every step
                is real, and a warning names samples whose first or last steps are all zero.
            texts: each sample's raw text (one string for one sample), for models that read
                it (``text_encoder: finetune``).
        Returns:
            A :class:`Prediction`; one sample gives unbatched arrays.
        """
        split, single = self._as_split(features, lengths, padding)
        if texts is not None:
            split.texts = [texts] if isinstance(texts, str) else [str(t) for t in texts]
            if len(split.texts) != len(split):
                raise AnalysisError(f"{len(split.texts)} texts for {len(split)} samples")
        out = self.predict_split(split, batch_size)
        masks = None
        if out.mask_means is not None:
            masks = {k: v.mean(axis=1) for k, v in out.mask_means.items()}  # (B,)
        if single:
            return Prediction(
                out.prediction[0],
                {k: float(v[0]) for k, v in masks.items()} if masks else None,
                None if out.unimodal is None else out.unimodal[0],
                None if out.gate is None else out.gate[0],
            )
        return Prediction(out.prediction, masks, out.unimodal, out.gate)

    def predict_split(self, split: Split, batch_size: int = BATCH_SIZE) -> SplitOutputs:
        """Outputs on every sample of a split (batched as ``mmlatch evaluate`` batches)."""
        if self.engine == "torch":
            return collect_outputs(self.model, split, batch_size, self.device, self.precision)
        from mmlatch.analysis.export import OnnxEngine

        lengths = list(split.lengths.values())
        unaligned = any(not np.array_equal(lengths[0], other) for other in lengths[1:])
        if unaligned not in self._onnx:
            self._onnx[unaligned] = OnnxEngine(self.model, self.modality_dims, unaligned, self.engine == "onnx-int8")
        out = infer(self.model, split, batch_size=batch_size, forward=self._onnx[unaligned])
        width = int(self.task.num_outputs)
        prediction = out.prediction.astype(np.float32) if out.ids else np.zeros((0, width), np.float32)
        return SplitOutputs(ids=list(split.ids), prediction=prediction, labels=split.labels)

    def _as_split(self, features: Mapping[str, Any], lengths: Any, padding: str | None = None) -> tuple[Split, bool]:
        if padding not in (None, "end", "front"):
            raise AnalysisError(f"padding must be 'end', 'front' or None, got {padding!r}")
        missing = [m for m in self.modalities if m not in features]
        extra = [m for m in features if m not in self.modality_dims]
        if missing or extra:
            raise AnalysisError(
                f"the model takes modalities {self.modalities}; got {list(features)}"
                + (f" (missing {missing})" if missing else "")
                + (f" (unknown {extra})" if extra else "")
            )
        arrays = {m: np.array(features[m], dtype=np.float32) for m in self.modalities}  # a copy: shifted in place
        ndims = {a.ndim for a in arrays.values()}
        if len(ndims) != 1 or ndims.pop() not in (2, 3):
            raise AnalysisError(
                f"features must all be (L, F) (one sample) or all (B, L, F) (a batch); got shapes "
                f"{ {m: a.shape for m, a in arrays.items()} }"
            )
        single = next(iter(arrays.values())).ndim == 2
        if single:
            arrays = {m: a[None] for m, a in arrays.items()}
        n = next(iter(arrays.values())).shape[0]
        for m, a in arrays.items():
            if a.shape[0] != n:
                raise AnalysisError(f"modality {m!r} has {a.shape[0]} samples, {self.modalities[0]!r} has {n}")
            if a.shape[2] != self.modality_dims[m]:
                raise AnalysisError(
                    f"modality {m!r} has {a.shape[2]} features per step, the model expects {self.modality_dims[m]}"
                )
            if a.shape[1] < 1:
                raise AnalysisError(f"modality {m!r} has no steps")
        lens = {}
        for m, a in arrays.items():
            given = lengths.get(m) if isinstance(lengths, Mapping) else lengths
            if given is None:
                continue
            ln = np.asarray(given, np.int64).reshape(-1)
            if ln.shape != (n,):
                raise AnalysisError(f"modality {m!r}: {ln.size} lengths for {n} samples")
            if (ln < 1).any() or (ln > a.shape[1]).any():
                raise AnalysisError(f"modality {m!r}: lengths must lie in [1, {a.shape[1]}], got {ln.tolist()}")
            if padding == "front":
                shift_to_front(a, a.shape[1] - ln, ln)  # real steps last -> first
            lens[m] = ln
        rest = {m: a for m, a in arrays.items() if m not in lens}
        if rest and padding is not None:
            lens.update(strip_padding(rest, padding))  # lengths from the zero steps on that side
        elif rest:
            _warn_zero_edges(rest, lengths_given=bool(lens))
            lens.update({m: np.full(n, a.shape[1], np.int64) for m, a in rest.items()})
        lens = {m: lens[m] for m in self.modalities}
        labels = np.full((n, self.label_width), np.nan, np.float32)
        return Split(arrays, lens, labels, [str(i) for i in range(n)]), single


def _warn_zero_edges(arrays: dict[str, np.ndarray], lengths_given: bool) -> None:
    """Warn when samples read as all-real have all-zero first or last steps (padding?).

    A step counts as zero when it is zero in every modality of the same sequence length
    (aligned modalities are judged together, as the readers judge padding).
    """
    groups: dict[int, np.ndarray] = {}
    for x in arrays.values():
        steps = nonzero_steps(x)  # (N, L)
        groups[x.shape[1]] = steps if x.shape[1] not in groups else groups[x.shape[1]] | steps
    lead = np.zeros(next(iter(arrays.values())).shape[0], dtype=bool)
    trail = lead.copy()
    for steps in groups.values():
        if steps.shape[1] < 2:
            continue
        lead |= ~steps[:, 0]
        trail |= ~steps[:, -1]
    if not (lead.any() or trail.any()):
        return
    sides = [f"leading ({lead.sum()} samples, first {np.flatnonzero(lead)[:5].tolist()})"] if lead.any() else []
    sides += [f"trailing ({trail.sum()} samples, first {np.flatnonzero(trail)[:5].tolist()})"] if trail.any() else []
    warnings.warn(
        f"predict: no lengths given for {sorted(arrays)}, so every step counts as real, but some samples "
        f"have all-zero {' and '.join(sides)} steps; if those are padding, pass lengths=... or "
        f"padding='front'/'end' (MulT pickles and some MFN files pad at the front)"
        + ("" if not lengths_given else " for these modalities too"),
        stacklevel=4,
    )


def load_run(
    run_dir: str | Path, device: str = "cpu", precision: str = "auto", log: Callable[[str], None] | None = None,
    engine: str = "torch",
) -> RunPredictor:
    """A finished run ready to predict (``mmlatch.load_run``).

    The model is in eval mode (dropout off, deterministic masks) with the run's best weights,
    on ``device``; call ``run.model.train()`` yourself only to fine-tune it.

    Args:
        run_dir: the run directory (``model.json``, ``model.safetensors``, ``config.yaml``).
        device: ``cpu``, ``cuda`` or ``auto``.
        precision: ``auto`` (default: as ``evaluate`` chooses), ``32`` or ``bf16`` (see
            :mod:`mmlatch.training.precision`);
            ``log`` hears the one-line note when bf16 is not native here and float32 runs.
        engine: ``torch`` (default), or ``onnx`` / ``onnx-int8``: the model exported to ONNX
            and run by onnxruntime on CPU, float32 or dynamically quantised to int8
            (predictions only: no masks or extras; ``precision`` is then ignored).
    Raises:
        RunError: a missing or corrupt run file (the message names it).
        ValueError: an unknown precision.
    """
    from mmlatch.analysis.export import ENGINES

    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    model, spec, cfg = load_run_model(run_dir)
    if engine != "torch":
        return RunPredictor(model, spec, cfg, Path(run_dir), "cpu", "32", engine)
    dev = resolve_device(device)
    chosen = resolve_inference_precision(
        precision, dev, spec["model"], log or _stderr, len(spec["modality_dims"])
    )
    return RunPredictor(model, spec, cfg, Path(run_dir), dev, chosen)




# ----------------------------------------------------------------------------- files


def read_for_prediction(
    path: str, predictor: RunPredictor, reader_options: Mapping[str, Any] | None = None
) -> tuple[dict[str, Split], bool]:
    """Read ``path`` with or without labels (through :mod:`mmlatch.data`), restricted to the
    run's modalities.

    Returns:
        (split name -> Split, whether the file has labels). Unlabelled splits have NaN
        labels (N, label width).
    """
    from mmlatch.data.readers.unlabelled import read_prediction_file as read_file

    options = dict(reader_options or {})
    got = read_file(
        path, predictor.modalities, predictor.label_width, options.get("format"), options.get("on_nonfinite", "zero")
    )
    if got is not None and got.dataset is None:
        return got.splits, got.labelled
    if got is not None:
        dataset = got.dataset
    elif path == predictor.config.data and not options:
        dataset = load_data(predictor.config)  # the run's own data, with its data_args
    else:
        dataset = load_dataset(path, **options)
    return _labelled_splits(dataset, predictor)


def _labelled_splits(dataset: Any, predictor: RunPredictor) -> tuple[dict[str, Split], bool]:
    """A labelled dataset's splits for the run; labels for another task are ignored (warned)."""
    fitted = fit_dataset(dataset, predictor.spec, str(predictor.path), same_task=False)
    if fitted.task == predictor.task:
        return dict(fitted.splits), True
    warnings.warn(
        f"{dataset.name}: labels ignored: the data is labelled for {describe_task(fitted.task)}, "
        f"run {str(predictor.path)!r} predicts {describe_task(predictor.task)}",
        stacklevel=3,
    )
    out = {}
    for name, part in fitted.splits.items():
        nan = np.full((len(part), predictor.label_width), np.nan, np.float32)
        out[name] = Split(part.features, part.lengths, nan, part.ids, part.texts)
    return out, False


def predict_file(
    predictor: RunPredictor,
    path: str,
    split: str | None = None,
    reader_options: Mapping[str, Any] | None = None,
    batch_size: int = BATCH_SIZE,
) -> pd.DataFrame:
    """Predictions for every sample of a data file (all its splits, or ``split``).

    Returns:
        One row per sample: ``split, id``, prediction columns, label columns (labelled files)
        ``mask_mean_<modality>`` (top-down models) and ``precision`` (``32`` or ``bf16``: the
        arithmetic of the forward passes). Predictions: ``prediction`` (one
        regression output) or ``prediction_<name>``; classification: ``prediction`` (class
        name) and ``prob_<class>``; multi-label: ``prob_<name>`` and ``prediction_<name>`` (0/1).
    """
    splits, labelled = read_for_prediction(path, predictor, reader_options)
    if split is not None:
        if split not in splits:
            raise AnalysisError(f"{path} has no split {split!r}; it has {sorted(splits)}")
        splits = {split: splits[split]}
    frames = []
    for name, part in splits.items():
        out = predictor.predict_split(part, batch_size)
        frame = pd.DataFrame({"split": name, "id": out.ids})
        for col, values in _prediction_columns(predictor.task, out.prediction).items():
            frame[col] = values
        if labelled:
            for col, values in _label_columns(predictor.task, part.labels).items():
                frame[col] = values
        if out.mask_means is not None:
            for m, v in out.mask_means.items():
                frame[f"mask_mean_{m}"] = v.mean(axis=1)
        frame["precision"] = predictor.precision
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _prediction_columns(task: TaskSpec, pred: np.ndarray) -> dict[str, np.ndarray]:
    if task.kind == "classification":
        e = np.exp(pred - pred.max(axis=1, keepdims=True))
        prob = e / e.sum(axis=1, keepdims=True)
        cols: dict[str, Any] = {"prediction": np.asarray(task.label_names, dtype=object)[pred.argmax(axis=1)]}
        cols.update({f"prob_{c}": prob[:, i] for i, c in enumerate(task.label_names)})
        return cols
    if task.kind == "multilabel":
        prob = 1.0 / (1.0 + np.exp(-pred.astype(np.float64)))
        cols = {f"prob_{c}": prob[:, i] for i, c in enumerate(task.label_names)}
        cols.update({f"prediction_{c}": (pred[:, i] > 0).astype(np.int64) for i, c in enumerate(task.label_names)})
        return cols
    if pred.shape[1] == 1:
        return {"prediction": pred[:, 0]}
    return {f"prediction_{c}": pred[:, i] for i, c in enumerate(task.label_names)}


def _label_columns(task: TaskSpec, labels: np.ndarray) -> dict[str, np.ndarray]:
    if task.kind == "classification":
        return {"label": np.asarray(task.label_names, dtype=object)[labels[:, 0].astype(np.int64)]}
    if labels.shape[1] == 1:
        return {"label": labels[:, 0]}
    return {f"label_{c}": labels[:, i] for i, c in enumerate(task.label_names)}


__all__ = ["Prediction", "RunPredictor", "load_run", "predict_file", "read_for_prediction"]
