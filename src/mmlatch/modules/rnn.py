"""Recurrent layers that are exact under padding without packed sequences."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from mmlatch.modules.masking import reverse_padded


class MaskedBiLSTM(nn.Module):
    """Bidirectional single-layer LSTM over end-padded batches.

    The backward direction runs over each sequence reversed within its own length, so
    padding never reaches a real step, and both directions stay on the fast unpacked path
    (one input-projection matmul for all steps). Outputs at padded steps are arbitrary;
    callers mask them.

    Args:
        input_size: F, the input feature size.
        hidden_size: H per direction.
        merge: ``sum`` (output H, as the paper's encoders) or ``concat`` (output 2H).
    """

    def __init__(
        self, input_size: int, hidden_size: int, merge: Literal["sum", "concat"] = "sum"
    ) -> None:
        super().__init__()
        if merge not in ("sum", "concat"):
            raise ValueError(f"merge must be 'sum' or 'concat', got {merge!r}")
        self.fwd = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.bwd = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.merge = merge
        self.output_size = hidden_size if merge == "sum" else 2 * hidden_size

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F), lengths: (B,) -> (B, L, H) (sum) or (B, L, 2H) (concat)."""
        out_f, _ = self.fwd(x)
        out_b, _ = self.bwd(reverse_padded(x, lengths))
        out_b = reverse_padded(out_b, lengths)
        if self.merge == "sum":
            return out_f + out_b
        return torch.cat([out_f, out_b], dim=-1)
