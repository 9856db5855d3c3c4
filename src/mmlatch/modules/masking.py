"""Padding helpers shared by every module: masks from lengths, per-sample reversal, additive attention masks."""

from __future__ import annotations

import torch
from torch import Tensor


def length_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Boolean mask of valid steps.

    Args:
        lengths: (B,) integer lengths.
        max_len: L, the padded length.
    Returns:
        (B, L) bool, True where the step is real.
    """
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def reversal_index(lengths: Tensor, max_len: int) -> Tensor:
    """For each sample, the step that lands at position t when the sequence is reversed
    within its own length (padding stays in place).

    Args:
        lengths: (B,) lengths.
        max_len: L.
    Returns:
        (B, L) long: ``len_b - 1 - t`` for ``t < len_b``, else ``t``. Applying it twice is
        the identity.
    """
    steps = torch.arange(max_len, device=lengths.device).unsqueeze(0)  # (1, L)
    lens = lengths.unsqueeze(1)  # (B, 1)
    return torch.where(steps < lens, lens - 1 - steps, steps)


def masked_fill_padding(x: Tensor, mask: Tensor, value: float = 0.0) -> Tensor:
    """Set padded steps of ``x`` (B, L, F) to ``value``; ``mask`` (B, L) is True on real steps."""
    return x.masked_fill(~mask.unsqueeze(2), value)


def additive_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A boolean attention mask (True: may attend) as the float added to the scores: 0 where
    True, -inf where False (so the softmax gives those keys exactly zero weight)."""
    return torch.zeros_like(mask, dtype=dtype).masked_fill(~mask, float("-inf"))
