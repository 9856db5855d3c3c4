"""Dot-product attention layers with key-padding masks (Eq. 1 of the MMLatch paper)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlatch.modules.dropout import dropout
from mmlatch.modules.masking import additive_mask

#: the type a softmax over half-precision scores computes in
_HALF_SOFTMAX = {torch.bfloat16: torch.float32, torch.float16: torch.float32}


class CrossModalAttention(nn.Module):
    """Scaled dot-product attention of one sequence over another (paper Eq. 1).

    ``a_kl = softmax(Q_k K_l^T / sqrt(d)) V_l (+ r_k)`` with bias-free Q/K/V projections.
    Padded key steps get no weight; outputs at padded query steps are arbitrary.

    Args:
        query_dim: feature size of the query sequence.
        key_dim: feature size of the key/value sequence.
        dim: projection size d (output size).
        dropout: dropout on the attention weights (training only).
        residual: add the query to the output (needs ``query_dim == dim``).
    """

    def __init__(
        self,
        query_dim: int,
        key_dim: int,
        dim: int = 100,
        dropout: float = 0.1,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if residual and query_dim != dim:
            raise ValueError(f"residual attention needs query_dim == dim, got {query_dim} != {dim}")
        self.q = nn.Linear(query_dim, dim, bias=False)
        self.k = nn.Linear(key_dim, dim, bias=False)
        self.v = nn.Linear(key_dim, dim, bias=False)
        self.dropout = dropout
        self.residual = residual
        for lin in (self.q, self.k, self.v):
            nn.init.xavier_uniform_(lin.weight)

    def forward(self, query: Tensor, key: Tensor, key_mask: Tensor) -> Tensor:
        """query: (B, Lq, Dq), key: (B, Lk, Dk), key_mask: (B, Lk) bool -> (B, Lq, dim).

        Explicit products with the padded keys' scores at -inf, and :func:`dropout` on the
        weights: the same mathematics as ``F.scaled_dot_product_attention``, which on CPU
        was slower at these sizes (by 20% of an inference step), with or without dropout.
        Q, K and V are three products, not one on concatenated weights: in bfloat16 the
        batched products copy a strided slice of a joint output before using it, and the
        copies cost more than the two extra calls (3% of an MMLatch step; equal in float32).
        A half-precision softmax runs in float32 (in bfloat16 it was both slower and coarser).
        Where the keys are no wider than ``dim``, the scores are computed as
        ``(query (W_q^T W_k)) key^T``, the same product regrouped: the keys need no projection
        (one matrix product fewer per call, 1-2% of an MMLatch step), the parameters and
        their gradients are those of ``q`` and ``k`` as before.
        """
        v = self.v(key)  # (B, Lk, dim)
        if self.k.in_features <= self.k.out_features:  # Q K^T = (query W_q^T W_k) key^T: one product fewer
            with torch.autocast(query.device.type, enabled=False):
                qk = self.q.weight.t() @ self.k.weight  # (Dq, Dk), in float32 under autocast
            q, k = torch.matmul(query, qk), key  # (B, Lq, Dk), (B, Lk, Dk)
        else:
            q, k = self.q(query), self.k(key)  # (B, L, dim) each
        bias = additive_mask(key_mask, v.dtype)  # (B, Lk)
        scores = torch.baddbmm(bias.unsqueeze(1), q, k.transpose(1, 2), alpha=v.size(-1) ** -0.5)  # (B, Lq, Lk)
        weights = torch.softmax(scores, dim=-1, dtype=_HALF_SOFTMAX.get(scores.dtype, scores.dtype)).to(v.dtype)
        out = dropout(weights, self.dropout, self.training) @ v  # (B, Lq, dim)
        return out + query if self.residual else out


class SelfAttention(CrossModalAttention):
    """Dot-product self-attention over one padded sequence (no residual)."""

    def __init__(self, dim: int, dropout: float = 0.1) -> None:
        super().__init__(dim, dim, dim, dropout=dropout, residual=False)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        """x: (B, L, d), mask: (B, L) bool -> (B, L, d)."""
        return super().forward(x, x, mask)


class AttentionSum(SelfAttention):
    """Dot-product self-attention whose outputs are summed over the real steps.

    The authors' fused-sequence read-out (bias-free Q/K/V ``dim x dim``, scores / sqrt(dim),
    padded keys masked, then a sum over time), except that padded query steps are left out
    of the sum (the released code sums them too, so padding changed its predictions).

    Args:
        dim: feature size of the sequence (2d for a concatenated BiLSTM).
        dropout: dropout on the attention weights (training only).
        released_padding: sum over every step of the batch, padded query steps included
            (the released code; their queries are zero there, so each adds the mean of the
            values over the real steps).
    """

    def __init__(self, dim: int, dropout: float = 0.1, released_padding: bool = False) -> None:
        super().__init__(dim, dropout=dropout)
        self.output_dim = dim
        self.released_padding = released_padding

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: (B, L, dim), mask: (B, L) bool -> (B, dim)."""
        if self.released_padding:
            return super().forward(x.masked_fill(~mask.unsqueeze(2), 0.0), mask).sum(dim=1)
        out = super().forward(x, mask)  # (B, L, dim)
        return out.masked_fill(~mask.unsqueeze(2), 0.0).sum(dim=1)
