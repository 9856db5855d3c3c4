"""Losses per task kind, and the mapping of raw model outputs to predictions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlatch.data.dataset import TaskSpec


def task_loss(task: TaskSpec, prediction: Tensor, labels: Tensor) -> Tensor:
    """Mean loss of a batch.

    Args:
        task: what the labels are.
        prediction: (B, num_outputs) model output (values or logits).
        labels: (B, num_outputs) float labels ((B, 1) class indices for classification).
    Returns:
        Scalar: L1 for regression (the paper's MAE loss), cross-entropy for classification,
        binary cross-entropy with logits for multilabel.
    """
    if task.kind == "regression":
        return F.l1_loss(prediction, labels)
    if task.kind == "classification":
        return F.cross_entropy(prediction, labels[:, 0].long())
    if task.kind == "multilabel":
        return F.binary_cross_entropy_with_logits(prediction, labels)
    raise ValueError(f"unknown task kind {task.kind!r}")


def mean_loss(task: TaskSpec, prediction: Tensor, labels: Tensor) -> float:
    """The loss over a whole split (no per-batch averaging error)."""
    with torch.no_grad():
        return float(task_loss(task, prediction.float(), labels.float()))
