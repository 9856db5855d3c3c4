"""Recurrent layers that are exact under padding without packed sequences."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from mmlatch.modules.dropout import Dropout
from mmlatch.modules.masking import reversal_index


class _PermuteRows(torch.autograd.Function):
    """``x.index_select(0, index)`` for a permutation ``index`` whose inverse is ``inverse``;
    the gradient is the inverse gather (exact: every row is read once)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, index: Tensor, inverse: Tensor) -> Tensor:  # (N, F) -> (N, F)
        ctx.save_for_backward(inverse)
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (inverse,) = ctx.saved_tensors
        return grad.index_select(0, inverse), None, None


def permute_rows(x: Tensor, index: Tensor, inverse: Tensor) -> Tensor:
    """x: (N, F) -> its rows in the order of the permutation ``index`` (``inverse`` undoes it);
    :class:`_PermuteRows` where a gradient is needed, a plain gather otherwise (and when traced
    for export, which cannot record a Python autograd function)."""
    if x.requires_grad and not torch.jit.is_tracing():
        return _PermuteRows.apply(x, index, inverse)
    return x.index_select(0, index)


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
        dropout: dropout on each direction's outputs before they are merged (training only;
            the authors' code drops the LSTM outputs this way).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        merge: Literal["sum", "concat"] = "sum",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if merge not in ("sum", "concat"):
            raise ValueError(f"merge must be 'sum' or 'concat', got {merge!r}")
        self.fwd = nn.LSTM(input_size, hidden_size)  # time-major: the layout the LSTM kernels use
        self.bwd = nn.LSTM(input_size, hidden_size)
        self.merge = merge
        self.dropout = Dropout(dropout)
        self.output_size = hidden_size if merge == "sum" else 2 * hidden_size

    def directions(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, L, F), lengths: (B,) -> forward and backward outputs, each (B, L, H),
        both indexed by input step (the backward output at step 0 is its final state).

        The backward direction's input is gathered straight into time-major order, and its
        output straight back into batch-major input-step order: one copy each way. The two
        gathers are each other's inverse, so each one's gradient is the other gather
        (:class:`_PermuteRows`), not the scatter-add a general gather's gradient needs.
        """
        batch, steps = x.size(0), x.size(1)
        rev = reversal_index(lengths.to(x.device), steps)  # (B, L): step read at reversed step t
        rows = torch.arange(batch, device=x.device).unsqueeze(1)  # (B, 1)
        into = (rows * steps + rev).t().reshape(-1)  # time-major row t*B+b <- x[b, rev[b, t]]
        back = (rev * batch + rows).reshape(-1)  # batch-major row b*L+s <- out[rev[b, s], b]
        out_f, _ = self.fwd(x.transpose(0, 1))  # (L, B, H)
        x_rev = permute_rows(x.reshape(batch * steps, -1), into, back).view(steps, batch, -1)
        out_b, _ = self.bwd(x_rev)  # (L, B, H), reversed steps
        out_b = permute_rows(out_b.reshape(steps * batch, -1), back, into).view(batch, steps, -1)
        return self.dropout(out_f.transpose(0, 1)), self.dropout(out_b)

    def _merge(self, a: Tensor, b: Tensor) -> Tensor:
        """a: forward outputs (B, L, H), a time-major view; b: backward outputs, contiguous.

        The sum reads ``b`` first so that it comes out batch-major and contiguous: ``a + b``
        would take ``a``'s time-major strides, and a linear layer on such a tensor cannot
        fold its batch into one matrix product (it broadcasts the weight to every sample and
        runs a batched product, which cost 8 of an inference step's 92 ms in MMLatch).
        """
        return b + a if self.merge == "sum" else torch.cat([a, b], dim=-1)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F), lengths: (B,) -> (B, L, H) (sum) or (B, L, 2H) (concat)."""
        return self._merge(*self.directions(x, lengths))

    def last_hidden(self, x: Tensor, lengths: Tensor) -> Tensor:
        """The final hidden states: forward at the last real step, backward at step 0.

        x: (B, L, F), lengths: (B,) -> (B, H) (sum) or (B, 2H) (concat).
        """
        out_f, out_b = self.directions(x, lengths)
        rows = torch.arange(x.size(0), device=x.device)
        return self._merge(out_f[rows, lengths.to(x.device) - 1], out_b[:, 0])
