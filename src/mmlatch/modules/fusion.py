"""Symmetric cross-modal attention fusion (paper Eqs. 1-3), for any number of modalities."""

from __future__ import annotations

from itertools import combinations

import torch
from torch import Tensor, nn

from mmlatch.modules.attention import CrossModalAttention


class SymmetricAttentionFusion(nn.Module):
    """Fuse per-step representations of aligned modalities into one sequence.

    For every pair (k, l): ``a_kl`` (queries k, keys/values l, residual on k) and the
    symmetric ``m_kl = a_kl + a_lk`` (Eq. 2). For every pair that does not contain the
    primary modality p: ``a_{kl,p}``, the attention of ``m_kl`` over ``r_p`` (Eq. 1, with
    or without its residual). The output concatenates every ``r_k``, every ``m_kl`` (pairs
    in ``combinations`` order) and every ``a_{kl,p}``. With (text, audio, visual) and
    p = text this is Eq. 3 up to block order, and exactly the authors' order
    ``r_T || r_A || r_V || m_TA || m_TV || m_AV || a_AVT`` (7d per step); with two
    modalities it is ``r_k || r_l || m_kl`` (3d).

    Args:
        modalities: modality names, in the model's key order.
        dim: d, the size of every representation.
        primary: the modality the non-primary pairs attend to (text in the paper).
        attn_dropout: dropout on attention weights.
        primary_residual: add the query ``m_kl`` to ``a_{kl,p}`` (the paper's Eq. 1; the
            authors' code has no residual there).
    """

    def __init__(
        self,
        modalities: list[str],
        dim: int,
        primary: str,
        attn_dropout: float = 0.1,
        primary_residual: bool = True,
    ) -> None:
        super().__init__()
        if primary not in modalities:
            raise ValueError(f"primary modality {primary!r} is not one of {modalities}")
        self.modalities = list(modalities)
        self.primary = primary
        self.pairs = list(combinations(self.modalities, 2))
        self.primary_pairs = [p for p in self.pairs if primary not in p]
        self.cross = nn.ModuleDict(
            {
                f"{q}__{k}": CrossModalAttention(dim, dim, dim, attn_dropout)
                for a, b in self.pairs
                for q, k in ((a, b), (b, a))
            }
        )
        self.to_primary = nn.ModuleDict(
            {
                f"{a}_{b}": CrossModalAttention(dim, dim, dim, attn_dropout, residual=primary_residual)
                for a, b in self.primary_pairs
            }
        )
        self.output_dim = dim * (len(self.modalities) + len(self.pairs) + len(self.primary_pairs))

    def forward(self, reps: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        """reps: modality -> (B, L, d); masks: modality -> (B, L) bool -> (B, L, output_dim)."""
        sym: dict[tuple[str, str], Tensor] = {}
        for a, b in self.pairs:
            a_ab = self.cross[f"{a}__{b}"](reps[a], reps[b], masks[b])
            a_ba = self.cross[f"{b}__{a}"](reps[b], reps[a], masks[a])
            sym[(a, b)] = a_ab + a_ba  # (B, L, d)
        p = self.primary
        to_p = [self.to_primary[f"{a}_{b}"](sym[(a, b)], reps[p], masks[p]) for a, b in self.primary_pairs]
        blocks = [reps[m] for m in self.modalities] + [sym[pair] for pair in self.pairs] + to_p
        return torch.cat(blocks, dim=-1)
