"""The one inference loop: every caller that runs a model over data goes through :func:`infer`.

``evaluate`` and the scoring after training (:func:`predict_split`, :func:`evaluate_model`),
``predict`` (torch and ONNX engines), the analyses (masks, gates, incongruity, latent paths,
routing) and robustness all call :func:`infer` and say what they collect:

- ``prediction`` (always): (N, num_outputs) float32 model outputs;
- ``labels=True``: (N, num_outputs) the batches' labels;
- ``masks=True``: top-down models' masks, each sample's mask averaged over its REAL steps
  (padding excluded): modality -> (N, F_k);
- ``extras=("gate", ...)``: entries of ``ModelOutput.extras`` (gates, unimodal heads, routing
  coefficients), kept when every batch has them;
- ``latents={name: (module, reduce)}``: a module's output recorded by a forward hook (its
  last call in each batch's forward), reduced per batch by ``reduce(output, batch)`` to (B, ...).

Batches are made by :func:`mmlatch.data.batching.make_loader` with one batch size (64 by
default), so every caller sees bit-identical predictions. They hold samples of similar
lengths (:func:`~mmlatch.data.batching.length_sorted_batches`: the split sorted by length,
longest first), so little of each batch is padding, and the results come back in the
split's order. That is exact because no prediction depends on its batch's padding (a test
checks every registered model); the one model setting where it does, the released MMLatch
code's padded steps (``padding: released``), is batched in the split's order, as its own
code batches it. Sorting cut MMLatch's inference time on a split of lengths 10-50 by
about a third (docs/guide/speed.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mmlatch.data import MultimodalDataset
from mmlatch.data.batching import Batch, length_sorted_batches, make_loader
from mmlatch.data.dataset import Split
from mmlatch.metrics import compute_metrics
from mmlatch.modules.pretrained_text import reads_text
from mmlatch.training.precision import inference_precision

#: batch size of every inference pass
BATCH_SIZE = 64

#: a latent probe: the module whose output is recorded, and its reduction per batch
Probe = tuple[nn.Module, Callable[[Tensor, Batch], Tensor]]


@dataclass
class Inference:
    """What :func:`infer` collected, in the split's order.

    Attributes:
        ids: N sample ids.
        prediction: (N, num_outputs) float32 outputs ((0, 0) for an empty split).
        labels: (N, num_outputs) labels of the batches, when asked for.
        mask_means: modality -> (N, F_k) per-sample mask means over real steps (top-down
            models, when asked for; None otherwise).
        extras: asked-for ``extras`` entries that every batch had, stacked: key -> (N, ...).
        latents: asked-for probes, reduced and stacked: name -> (N, ...).
    """

    ids: list[str]
    prediction: np.ndarray
    labels: np.ndarray | None = None
    mask_means: dict[str, np.ndarray] | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    latents: dict[str, np.ndarray] = field(default_factory=dict)

    def reordered(self, order: np.ndarray) -> Inference:
        """The same results with sample ``order[i]`` in row i (``order``: (N,) a permutation)."""
        return Inference(
            ids=[self.ids[i] for i in order],
            prediction=self.prediction[order],
            labels=None if self.labels is None else self.labels[order],
            mask_means=None if self.mask_means is None else {k: v[order] for k, v in self.mask_means.items()},
            extras={k: v[order] for k, v in self.extras.items()},
            latents={k: v[order] for k, v in self.latents.items()},
        )


def depends_on_batch_padding(model: nn.Module) -> bool:
    """Whether a sample's prediction can depend on how much its batch is padded: only with the
    released MMLatch code's padded steps (``padding: released``), which each module that
    reproduces them marks with ``released_padding``."""
    return any(getattr(m, "released_padding", False) for m in model.modules())


class _Collector:
    """Accumulates one batch at a time what :func:`infer` was asked to collect."""

    def __init__(self, labels: bool, masks: bool, extras: Sequence[str], latents: Sequence[str]) -> None:
        self.want_labels, self.want_masks = labels, masks
        self.ids: list[str] = []
        self.preds: list[Any] = []
        self.labels: list[Tensor] = []
        self.mask_sums: dict[str, list[Tensor]] = {}
        self.has_masks = True
        self.extras: dict[str, list[Tensor]] = {k: [] for k in extras}
        self.latents: dict[str, list[Tensor]] = {k: [] for k in latents}

    def add(self, batch: Batch, out: Any, recorded: Mapping[str, Tensor]) -> None:
        prediction = getattr(out, "prediction", out)  # a ModelOutput, or an engine's array
        self.preds.append(prediction.float().cpu() if isinstance(prediction, Tensor) else prediction)
        self.ids.extend(batch.ids)
        if self.want_labels:
            self.labels.append(batch.labels.cpu())
        masks = getattr(out, "masks", None)
        if self.want_masks and masks is None:
            self.has_masks = False
        elif self.want_masks and self.has_masks:
            for k, mask in masks.items():  # (B, L, F_k), zero at padding
                lengths = batch.lengths[k].to(mask.dtype).unsqueeze(1)  # (B, 1)
                self.mask_sums.setdefault(k, []).append((mask.sum(dim=1) / lengths).float().cpu())
        extras = getattr(out, "extras", None)
        for key, parts in self.extras.items():
            if extras is not None and key in extras:
                parts.append(extras[key].float().cpu())
        for name, value in recorded.items():
            self.latents[name].append(value.float().cpu())

    def result(self) -> Inference:
        n = len(self.preds)
        if not self.preds:
            prediction = np.zeros((0, 0), np.float32)
        elif isinstance(self.preds[0], Tensor):
            prediction = torch.cat(self.preds).numpy()
        else:
            prediction = np.concatenate(self.preds)
        return Inference(
            ids=self.ids,
            prediction=prediction,
            labels=(torch.cat(self.labels).numpy() if self.labels else np.zeros((0, 0), np.float32))
            if self.want_labels else None,
            mask_means=(
                {k: torch.cat(v).numpy() for k, v in self.mask_sums.items()}
                if self.want_masks and self.has_masks and self.mask_sums else None
            ),
            extras={k: torch.cat(v).numpy() for k, v in self.extras.items() if v and len(v) == n},
            latents={k: torch.cat(v).numpy() for k, v in self.latents.items() if v},
        )


@torch.inference_mode()
def infer(
    model: nn.Module,
    split: Split,
    *,
    batch_size: int = BATCH_SIZE,
    device: str = "cpu",
    precision: str = "32",
    labels: bool = False,
    masks: bool = False,
    extras: Sequence[str] = (),
    latents: Mapping[str, Probe] | None = None,
    forward: Callable[[dict[str, Tensor], dict[str, Tensor]], Any] | None = None,
) -> Inference:
    """Run ``model`` (eval mode, on ``device``) over every sample of ``split`` and collect
    what is asked for (see the module docstring).

    Args:
        model: a model returning :class:`~mmlatch.modules.outputs.ModelOutput`.
        split: the samples (batched by length unless the model depends on its batch's
            padding; see the module docstring); the results are in their order.
        precision: a resolved inference precision, ``32`` or ``bf16``
            (:mod:`mmlatch.training.precision`).
        forward: call this ``(features, lengths)`` instead of ``model`` (e.g. an ONNX
            engine returning (B, num_outputs) arrays: predictions only).
    Returns:
        The :class:`Inference`.
    """
    model.eval().to(device)
    probes = dict(latents or {})
    collector = _Collector(labels, masks, extras, list(probes))
    recorded: dict[str, Tensor] = {}
    hooks = [
        module.register_forward_hook(lambda mod, inp, out, name=name: recorded.__setitem__(name, out))
        for name, (module, _) in probes.items()
    ]
    run = forward or model
    texts = forward is None and reads_text(model)  # the model tokenises the batches' raw texts
    batches = None if depends_on_batch_padding(model) else length_sorted_batches(split, batch_size)
    try:
        for batch in make_loader(split, batch_size, shuffle=False, batches=batches):
            batch = batch.to(device) if forward is None else batch
            recorded.clear()
            with inference_precision(precision, device):
                out = run(batch.features, batch.lengths, texts=batch.texts) if texts else run(batch.features, batch.lengths)
            reduced = {name: reduce(recorded[name], batch) for name, (_, reduce) in probes.items()}
            collector.add(batch, out, reduced)
    finally:
        for hook in hooks:
            hook.remove()
    result = collector.result()
    if not batches:  # in the split's order already (or no samples)
        return result
    return result.reordered(np.argsort(np.concatenate(batches), kind="stable"))


def predict_split(
    model: nn.Module, dataset: MultimodalDataset, split: str, batch_size: int = BATCH_SIZE, device: str = "cpu",
    precision: str = "32",
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Predictions of ``model`` (eval mode) on a whole split, in ``precision`` (``32`` or
    ``bf16``: a resolved inference precision, see :mod:`mmlatch.training.precision`).

    Returns:
        predictions (N, num_outputs), labels (N, num_outputs), ids (N).
    """
    out = infer(model, dataset.split(split), batch_size=batch_size, device=device, precision=precision, labels=True)
    assert out.labels is not None
    return out.prediction, out.labels, out.ids


def evaluate_model(
    model: nn.Module, dataset: MultimodalDataset, split: str, device: str = "cpu", precision: str = "32"
) -> dict[str, float]:
    """The task's metrics of ``model`` on ``split``, computed over the whole split (forward
    passes in ``precision``: ``32`` or ``bf16``)."""
    pred, labels, _ = predict_split(model, dataset, split, device=device, precision=precision)
    return compute_metrics(dataset.task, pred, labels)


__all__ = ["BATCH_SIZE", "Inference", "Probe", "depends_on_batch_padding", "evaluate_model", "infer", "predict_split"]
