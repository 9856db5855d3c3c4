"""Dropout drawn from random bits, several times cheaper on CPU than ``nn.Dropout``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout: each element zeroed with probability ``p``, survivors scaled to keep the mean.

    On CUDA this is ``F.dropout``. On CPU, where drawing the random numbers was the largest
    single cost of a transformer training step, each element gets 16 random bits (four per
    64-bit draw: about three times as fast as a float draw, six times the Bernoulli draws of
    ``F.dropout``, and 1.4-3x the 32 bits per element this used before) and is kept when they
    are at least ``round(p * 2**16)`` up from the bottom of their range. The drop probability
    is thus ``p`` rounded to a multiple of 2**-16 (off by at most 2**-17, e.g. 0.1 becomes
    0.100006), and survivors are scaled by one over the keep probability actually used, so
    the expectation is exact.
    """
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    return x * keep_scale(x.shape, p, x.dtype)


def keep_scale(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype) -> Tensor:
    """:func:`dropout`'s CPU multiplier for a tensor of ``shape``: 0 where dropped, one over the
    keep probability elsewhere (0 < p < 1; the same random draws as :func:`dropout`)."""
    drop = round(p * 2**16)  # dropped bit patterns, of 2**16
    if drop == 0:  # p below 2**-17: nothing is dropped
        return torch.ones(shape, dtype=dtype)
    if drop == 2**16:  # p above 1 - 2**-17: everything is
        return torch.zeros(shape, dtype=dtype)
    n = math.prod(shape)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # every 64-bit value
    keep = bits.view(torch.int16)[:n].view(shape) >= drop - 2**15  # P(keep) = 1 - drop / 2**16
    return keep.to(dtype).mul_(2**16 / (2**16 - drop))


class Dropout(nn.Module):
    """:func:`dropout` as a module (``nn.Dropout``'s interface; no parameters)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
