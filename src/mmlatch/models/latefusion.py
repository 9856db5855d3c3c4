"""The MMLatch paper's baseline (late fusion) and its top-down variants.

Two named variants (model option ``variant``):

- ``authors``: the authors' released model (github georgepar/mmlatch, ``mmlatch/mm.py``),
  weight for weight, padded steps included as the released code has them (its encoders keep
  their padded attention outputs, its fusion attends to padded steps and its read-out sums
  them: option ``padding``, default ``released``; ``masked`` makes padding inert).
- ``paper``: the paper's text (Sec. 2-3).

``VARIANTS`` holds each variant's settings; docs/guide/models.md ("Variants") lists the differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model, register_topdown
from mmlatch.modules.checks import check_aligned, check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.encoders import RecurrentEncoder
from mmlatch.modules.fusion import SymmetricAttentionFusion
from mmlatch.modules.masking import length_mask
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.readout import AttentiveSumReadout, LastStateReadout


@dataclass(frozen=True)
class Variant:
    """Where a variant differs. Dropout rates name the model option they take."""

    #: encoders: dropout on the BiLSTM outputs and on the self-attention weights (authors)
    #: or on the representation r_k (paper)
    encoder_dropout_inside: bool
    #: a_AVT keeps Eq. 1's residual
    primary_residual: bool
    #: fused read-out: "attentive-sum" (authors) or "last-state" (paper)
    readout: str
    #: dropout before the head (the option ``dropout``) or none
    head_dropout: bool
    #: attention-weight dropout when ``attn_dropout`` is left unset
    attn_dropout: float
    #: the top-down options' values when left unset
    topdown: dict[str, Any]
    #: the option ``padding`` when left unset (see :data:`PADDING`)
    padding: str = "masked"


VARIANTS: dict[str, Variant] = {
    "authors": Variant(
        encoder_dropout_inside=True,
        primary_residual=False,
        readout="attentive-sum",
        head_dropout=False,
        attn_dropout=0.1,
        topdown={"stage1_grad": True, "mask_dropout": 0.2, "feedback_dropout": 0.1},
        # the released code's padded steps: its loop trains this model to the authors' figures,
        # the masked one to about twice their test MAE (docs/guide/fidelity.md, "Training parity")
        padding="released",
    ),
    "paper": Variant(
        encoder_dropout_inside=False,
        primary_residual=True,
        readout="last-state",
        head_dropout=True,
        attn_dropout=0.0,
        topdown={"stage1_grad": False, "mask_dropout": 0.0, "feedback_dropout": 0.0},
    ),
}

#: the default variant (docs/guide/models.md, "Variants", gives the measurements behind the choice)
DEFAULT_VARIANT = "paper"
#: how padded steps of a batch act: "masked" (never: a sample's prediction does not depend on
#: its batch) or "released" (as in the released code, variant authors only, its default)
PADDING = ("masked", "released")


def get_variant(name: str) -> Variant:
    """The settings of variant ``name``; ValueError listing the choices otherwise."""
    if name not in VARIANTS:
        raise ValueError(f"model_args.variant must be one of {', '.join(VARIANTS)}; got {name!r}")
    return VARIANTS[name]


class LateFusion(nn.Module):
    """Unimodal encoders -> fusion -> read-out of the fused sequence -> head.

    Args:
        encoders: modality -> encoder ``(x (B, L, F_k), lengths) -> (B, L, d_k)``; its key
            order is the model's modality order.
        fusion: ``(reps, masks) -> (B, L, D)`` with attribute ``output_dim`` = D.
        readout: ``(fused (B, L, D), lengths) -> (B, H)`` (e.g. :class:`AttentiveSumReadout`).
        head: ``(B, H) -> (B, num_outputs)``.
        dropout: dropout before the head.
        released_padding: the fusion attends to padded keys (the released code's fusion has
            no key mask); see the option ``padding``.
    """

    def __init__(
        self,
        encoders: nn.ModuleDict,
        fusion: nn.Module,
        readout: nn.Module,
        head: nn.Module,
        dropout: float = 0.0,
        released_padding: bool = False,
    ) -> None:
        super().__init__()
        self.encoders = encoders
        self.fusion = fusion
        self.readout = readout
        self.dropout = Dropout(dropout)
        self.head = head
        self.modality_dims: dict[str, int] = {k: e.input_dim for k, e in encoders.items()}
        self.representation_dims: dict[str, int] = {k: e.output_dim for k, e in encoders.items()}
        self.check_finite = True
        self.released_padding = released_padding

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
        if self.released_padding:  # every step may be attended to, padded ones included
            masks = {k: torch.ones_like(m) for k, m in masks.items()}
        fused = self.fusion(reps, masks)  # (B, L, 7d) for three modalities
        pooled = self.readout(fused, lengths[next(iter(lengths))])  # (B, H)
        return ModelOutput(self.head(self.dropout(pooled)))


def build_late_fusion(
    modality_dims: dict[str, int],
    variant: str = DEFAULT_VARIANT,
    hidden: int = 100,
    dropout: float = 0.2,
    attn_dropout: float | None = None,
    primary: str = "text",
    num_outputs: int = 1,
    padding: str | None = None,
) -> LateFusion:
    """The paper's late-fusion network (d = ``hidden``) as variant ``variant`` builds it.

    ``dropout``: authors: on the encoders' BiLSTM outputs and self-attention weights;
    paper: on every r_k and before the head. ``attn_dropout`` (None: the variant's, 0.1 /
    0.0): on the cross-modal attention weights, and (authors) on the fused BiLSTM outputs
    and read-out attention weights. ``padding`` (None: the variant's, ``released`` for authors,
    ``masked`` for paper): ``masked`` (padded steps never count) or ``released`` (authors only:
    the released code's padded steps, which train the released model as its authors' loop
    does; a prediction then depends on how much its batch is padded).
    """
    v = get_variant(variant)
    padding = v.padding if padding is None else padding
    if padding not in PADDING:
        raise ValueError(f"model_args.padding must be one of {', '.join(PADDING)}; got {padding!r}")
    released = padding == "released"
    if released and v.readout != "attentive-sum":
        raise ValueError("model_args.padding=released reproduces the released code: it needs variant authors")
    attn = v.attn_dropout if attn_dropout is None else attn_dropout
    names = list(modality_dims)
    if primary not in names:
        primary = names[0]
    if v.encoder_dropout_inside:
        encoders = nn.ModuleDict(
            {k: RecurrentEncoder(f, hidden, 0.0, dropout, rnn_dropout=dropout, released_padding=released) for k, f in modality_dims.items()}
        )
    else:
        encoders = nn.ModuleDict({k: RecurrentEncoder(f, hidden, dropout, attn) for k, f in modality_dims.items()})
    fusion = SymmetricAttentionFusion(names, hidden, primary, attn, primary_residual=v.primary_residual)
    readout: nn.Module
    if v.readout == "attentive-sum":
        readout = AttentiveSumReadout(fusion.output_dim, hidden, dropout=attn, released_padding=released)
    else:
        readout = LastStateReadout(fusion.output_dim, hidden)
    head = nn.Linear(readout.output_dim, num_outputs)
    return LateFusion(encoders, fusion, readout, head, dropout if v.head_dropout else 0.0, released)


@register_model("baseline", "MMLatch paper's late-fusion baseline (LSTM+attention encoders, symmetric cross-modal fusion)")
def baseline(
    modality_dims: dict[str, int],
    *,
    variant: str = DEFAULT_VARIANT,
    hidden: int = 100,
    dropout: float = 0.2,
    attn_dropout: float | None = None,
    primary: str = "text",
    num_outputs: int = 1,
    padding: str | None = None,
) -> LateFusion:
    return build_late_fusion(modality_dims, variant, hidden, dropout, attn_dropout, primary, num_outputs, padding)


def _topdown_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    return dict(get_variant(kwargs.get("variant") or DEFAULT_VARIANT).topdown)


register_topdown(
    "mmlatch",
    "baseline",
    "Baseline + MMLatch top-down feedback (LSTM feedback generators)",
    variant_defaults=_topdown_defaults,
)
register_topdown(
    "mmlatch-linear",
    "baseline",
    "Baseline + MMLatch with feed-forward feedback (the 'no LSTM' ablation)",
    feedback="linear",
    variant_defaults=_topdown_defaults,
)
