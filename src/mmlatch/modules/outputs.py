"""What every model's forward returns, and what training logs from it.

A model adds its own values to the per-epoch log (``log/metrics.csv``) through one
interface, with no branch for it in the trainer:

- ``logged_values(out) -> dict[str, Tensor]``: values of one training batch (default:
  :func:`logged_values`, reading the documented ``extras`` keys ``gate`` and ``primary``);
- ``summarise_logged(batches, names) -> dict[str, float]``: one epoch's row entries from the
  batches' values (default: :func:`summarise_logged`).

Extra losses come the same way: ``auxiliary_loss(out, labels, loss_fn) -> Tensor | None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from torch import Tensor


class ModelOutput(NamedTuple):
    """A model's output.

    Attributes:
        prediction: (B, num_outputs) regression values or logits.
        masks: for top-down models, modality -> (B, L, F_k) mask in [0, 1] applied to that
            modality's input (zero at padded steps); None otherwise.
        extras: model-specific tensors for analysis (e.g. HCT-MG gate weights); None if none.
    """

    prediction: Tensor
    masks: dict[str, Tensor] | None = None
    extras: dict[str, Tensor] | None = None


def logged_values(out: ModelOutput) -> dict[str, Tensor]:
    """One training batch's logged values read from ``out.extras``: ``gate`` (the batch-mean
    gate weight per modality, (n_modalities,)) and ``primary`` (the primary modality the
    batch was fused around, a scalar). Empty for models without a gate."""
    if out.extras is None or "gate" not in out.extras:
        return {}
    gate = out.extras["gate"].detach().float()
    values = {"gate": gate.reshape(-1, gate.shape[-1]).mean(dim=0).cpu()}  # (n_modalities,)
    if "primary" in out.extras:
        values["primary"] = out.extras["primary"].reshape(-1)[0].detach().cpu()
    return values


def summarise_logged(batches: Sequence[dict[str, Tensor]], names: Sequence[str]) -> dict[str, float]:
    """An epoch's log entries from its batches' :func:`logged_values`: ``gate_<modality>``
    (mean over batches), ``primary`` (index into ``names``: the primary most batches used,
    else the modality of the largest mean gate) and ``primary_share`` (share of batches that
    used it)."""
    gates = [b["gate"] for b in batches if "gate" in b]
    if not gates:
        return {}
    total = gates[0]
    for g in gates[1:]:
        total = total + g
    gate = (total / len(gates)).tolist()
    names = list(names) or [str(i) for i in range(len(gate))]
    row = {f"gate_{n}": g for n, g in zip(names, gate)}
    row["primary"] = float(max(range(len(gate)), key=gate.__getitem__))
    primaries = [int(b["primary"]) for b in batches if "primary" in b]
    if primaries:
        counts = np.bincount(primaries, minlength=len(gate))
        row["primary"] = float(counts.argmax())
        row["primary_share"] = float(counts.max() / counts.sum())
    return row
