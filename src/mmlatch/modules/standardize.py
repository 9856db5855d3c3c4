"""Feature standardisation as a model's first step (statistics from the data layer)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mmlatch.modules.checks import normalize_lengths
from mmlatch.modules.masking import length_mask


class Standardized(nn.Module):
    """``model((x - mean) / std)``: per-feature standardisation in front of any model.

    The statistics are buffers (saved with the weights, exported with the graph); padded
    steps stay 0, so padding still never changes a prediction. Attributes the wrapper does
    not have (``modality_dims``, ``auxiliary_loss``, ``encode`` ...) are the inner model's.

    Args:
        model: the model, ``(features, lengths) -> ModelOutput``.
        mean: modality -> (F_k,) feature means.
        std: modality -> (F_k,) feature standard deviations (> 0).
    """

    def __init__(self, model: nn.Module, mean: dict[str, Any], std: dict[str, Any]) -> None:
        super().__init__()
        self.inner = model
        self.names = list(mean)
        for k in self.names:
            self.register_buffer(f"mean_{k}", torch.as_tensor(mean[k], dtype=torch.float32))
            self.register_buffer(f"std_{k}", torch.as_tensor(std[k], dtype=torch.float32))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("inner"), name)

    def standardize(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]:
        """modality -> (B, L_k, F_k) standardised, 0 at padded steps."""
        out = {}
        for k, x in features.items():
            if k not in self.names:
                out[k] = x  # the inner model names the unknown modality in its own check
                continue
            mean, std = getattr(self, f"mean_{k}"), getattr(self, f"std_{k}")
            real = length_mask(lengths[k].to(x.device), x.size(1)).unsqueeze(2)  # (B, L, 1)
            out[k] = ((x - mean.to(x.dtype)) / std.to(x.dtype)).masked_fill(~real, 0.0)
        return out

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None, **inputs: Any
    ) -> Any:
        """features: modality -> (B, L_k, F_k); lengths as the inner model takes them; other
        inputs (``texts``) passed on as they are."""
        per_modality = normalize_lengths(features, lengths)
        return self.inner(self.standardize(features, per_modality), lengths, **inputs)


__all__ = ["Standardized"]
