"""TFN: Tensor Fusion Network (Zadeh, Chen, Poria, Cambria, Morency, EMNLP 2017)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.subnets import UtteranceFusionNet, mlp, need_modalities, utterance_subnets


class TensorFusion(nn.Module):
    """The outer product of the modality vectors, each with a constant 1 appended.

    ``z^m = [1; z_1] (x) [1; z_2] (x) ... (x) [1; z_n]``, flattened: it holds every unimodal
    vector, every pairwise product and the n-way products.

    Args:
        dims: modality -> d_k, in the order of the product.
    """

    def __init__(self, dims: dict[str, int]) -> None:
        super().__init__()
        self.names = list(dims)
        self.output_dim = math.prod(d + 1 for d in dims.values())

    def forward(self, z: dict[str, Tensor]) -> Tensor:
        """z: modality -> (B, d_k) -> (B, prod_k (d_k + 1))."""
        fused: Tensor | None = None
        for k in self.names:
            one = torch.ones_like(z[k][:, :1])
            zk = torch.cat([one, z[k]], dim=1)  # (B, d_k + 1)
            fused = zk if fused is None else (fused.unsqueeze(2) * zk.unsqueeze(1)).flatten(1)
        assert fused is not None
        return fused


@register_model(
    "tfn",
    "TFN (Zadeh et al. 2017): utterance subnetworks, outer-product tensor fusion, MLP; unaligned input allowed",
)
def tfn(
    modality_dims: dict[str, int],
    *,
    hidden: int = 128,
    audio_hidden: int = 32,
    visual_hidden: int = 128,
    text_out: int = 32,
    post_fusion_dim: int = 64,
    sequence: str | None = None,
    dropout: float = 0.3,
    post_fusion_dropout: float = 0.5,
    num_outputs: int = 1,
) -> UtteranceFusionNet:
    """TFN. Subnetworks (paper Sec. 3): text: LSTM (``hidden``) -> last real state -> linear
    (``text_out``); audio / visual / other: mean over real steps -> 3 ReLU layers
    (``audio_hidden`` / ``visual_hidden``). Tensor fusion, then dropout and 2 ReLU layers of
    ``post_fusion_dim`` and the output layer. Defaults: MMSA 2.2.1's published MOSI setting
    (configs/zoo/tfn.yaml). Unlike MMSA, the output is not squashed into [-3, 3] (a MOSI
    range), so any label scale (MMMO 1-5) is reachable.
    """
    need_modalities("tfn", modality_dims)
    subnets = utterance_subnets(
        modality_dims, hidden=hidden, audio_hidden=audio_hidden, visual_hidden=visual_hidden,
        text_out=text_out, dropout=dropout, sequence=sequence,
    )
    fusion = TensorFusion({k: s.output_dim for k, s in subnets.items()})
    head = nn.Sequential(
        Dropout(post_fusion_dropout),
        mlp([fusion.output_dim, post_fusion_dim, post_fusion_dim], last_activation=True),
        nn.Linear(post_fusion_dim, num_outputs),
    )
    return UtteranceFusionNet(subnets, fusion, head, "tfn")
