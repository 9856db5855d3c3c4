"""What every model's forward returns."""

from __future__ import annotations

from typing import NamedTuple

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
