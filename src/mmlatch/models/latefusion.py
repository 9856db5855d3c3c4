"""The MMLatch paper's baseline (late fusion) and its top-down variants."""

from __future__ import annotations

from torch import Tensor, nn

from mmlatch.models.registry import register_model, register_topdown
from mmlatch.modules.attention import AttentionPooling
from mmlatch.modules.checks import check_aligned, check_inputs, normalize_lengths
from mmlatch.modules.encoders import RecurrentEncoder
from mmlatch.modules.fusion import SymmetricAttentionFusion
from mmlatch.modules.masking import length_mask
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.rnn import MaskedBiLSTM


class LateFusion(nn.Module):
    """Unimodal encoders -> fusion -> fused BiLSTM -> attention pooling -> head.

    Args:
        encoders: modality -> encoder ``(x (B, L, F_k), lengths) -> (B, L, d_k)``; its key
            order is the model's modality order.
        fusion: ``(reps, masks) -> (B, L, D)`` with attribute ``output_dim`` = D.
        fused_rnn: a :class:`MaskedBiLSTM` over the fused sequence.
        pooling: ``(h (B, L, H), mask) -> (B, H)``.
        head: ``(B, H) -> (B, num_outputs)``.
        dropout: dropout before the head.
    """

    def __init__(
        self,
        encoders: nn.ModuleDict,
        fusion: nn.Module,
        fused_rnn: MaskedBiLSTM,
        pooling: nn.Module,
        head: nn.Module,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.encoders = encoders
        self.fusion = fusion
        self.fused_rnn = fused_rnn
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = head
        self.modality_dims: dict[str, int] = {k: e.input_dim for k, e in encoders.items()}
        self.representation_dims: dict[str, int] = {k: e.output_dim for k, e in encoders.items()}
        self.check_finite = True

    def encode(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]:
        """modality -> r_k (B, L, d_k), zero at padded steps."""
        return {k: enc(features[k], lengths[k]) for k, enc in self.encoders.items()}

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L, F_k); lengths: (B,) or per modality -> ModelOutput."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        check_aligned(lengths, features, "the late-fusion model")
        reps = self.encode(features, lengths)
        masks = {k: length_mask(lengths[k], features[k].size(1)) for k in reps}
        fused = self.fusion(reps, masks)  # (B, L, 7d) for three modalities
        first = next(iter(lengths))
        h = self.fused_rnn(fused, lengths[first])  # (B, L, H)
        pooled = self.pooling(h, masks[first])  # (B, H)
        return ModelOutput(self.head(self.dropout(pooled)))


def build_late_fusion(
    modality_dims: dict[str, int],
    hidden: int = 100,
    dropout: float = 0.2,
    attn_dropout: float = 0.1,
    primary: str = "text",
    num_outputs: int = 1,
) -> LateFusion:
    """The paper's late-fusion network with its sizes (d = 100)."""
    names = list(modality_dims)
    if primary not in names:
        primary = names[0]
    encoders = nn.ModuleDict(
        {k: RecurrentEncoder(f, hidden, dropout, attn_dropout) for k, f in modality_dims.items()}
    )
    fusion = SymmetricAttentionFusion(names, hidden, primary, attn_dropout)
    return LateFusion(
        encoders,
        fusion,
        MaskedBiLSTM(fusion.output_dim, hidden, merge="sum"),
        AttentionPooling(hidden),
        nn.Linear(hidden, num_outputs),
        dropout,
    )


@register_model("baseline", "MMLatch paper's late-fusion baseline (LSTM+attention encoders, symmetric cross-modal fusion)")
def baseline(
    modality_dims: dict[str, int],
    *,
    hidden: int = 100,
    dropout: float = 0.2,
    attn_dropout: float = 0.1,
    primary: str = "text",
    num_outputs: int = 1,
) -> LateFusion:
    return build_late_fusion(modality_dims, hidden, dropout, attn_dropout, primary, num_outputs)


register_topdown("mmlatch", "baseline", "Baseline + MMLatch top-down feedback (LSTM feedback generators)")
register_topdown(
    "mmlatch-linear",
    "baseline",
    "Baseline + MMLatch with feed-forward feedback (the 'no LSTM' ablation)",
    feedback="linear",
)
