"""Padding helpers shared by every module: masks from lengths, per-sample reversal."""

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


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence within its own length, leaving padding in place.

    Running a forward RNN over the result is a backward RNN over the real steps that never
    reads padding (no packing needed).

    Args:
        x: (B, L, F) end-padded sequences.
        lengths: (B,) lengths.
    Returns:
        (B, L, F) with ``out[b, t] = x[b, len_b - 1 - t]`` for ``t < len_b``.
    """
    batch, max_len = x.size(0), x.size(1)
    idx = reversal_index(lengths.to(x.device), max_len)  # (B, L)
    # Row gather on the flattened batch: whole feature rows move at once (faster than gather).
    flat = idx + torch.arange(batch, device=x.device).unsqueeze(1) * max_len  # (B, L)
    return x.reshape(batch * max_len, -1).index_select(0, flat.reshape(-1)).view_as(x)


def masked_fill_padding(x: Tensor, mask: Tensor, value: float = 0.0) -> Tensor:
    """Set padded steps of ``x`` (B, L, F) to ``value``; ``mask`` (B, L) is True on real steps."""
    return x.masked_fill(~mask.unsqueeze(2), value)
