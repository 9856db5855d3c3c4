"""The MMLatch top-down feedback plug-in, over any backbone with an ``encode`` method."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from mmlatch.modules.checks import check_aligned, check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.masking import length_mask, masked_fill_padding
from mmlatch.modules.outputs import ModelOutput


@runtime_checkable
class TopDownBackbone(Protocol):
    """What ``TopDown`` needs from a backbone.

    ``encode`` returns, per modality, a high-level sequence with one step per input step
    (B, L, d_k); ``forward`` is the full model.
    """

    modality_dims: dict[str, int]
    representation_dims: dict[str, int]

    def encode(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]: ...

    def __call__(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> ModelOutput: ...


class TopDown(nn.Module):
    """Two-stage forward with top-down masks (MMLatch, paper Sec. 2.7-2.8).

    Stage I: ``r = backbone.encode(x)``; every generator ``j__k`` maps ``r_j`` to a mask
    ``f_{j->k}`` of modality k's input size; the mask of k is the mean over the other
    modalities j (Eq. 4). Stage II: ``backbone(mask_k * x_k)``. Works for any number >= 2
    of aligned modalities.

    Args:
        backbone: a :class:`TopDownBackbone`.
        feedback: ModuleDict of generators keyed ``"j__k"`` for every ordered pair j != k,
            each ``(r_j (B, L, d_j), lengths) -> (B, L, F_k)`` in [0, 1].
        stage1_grad: back-propagate through the Stage-I encoders (the authors' code) or not
            (the paper; default).
        mask_dropout: dropout on the masks during training (never at evaluation).
    """

    def __init__(
        self,
        backbone: nn.Module,
        feedback: nn.ModuleDict,
        stage1_grad: bool = False,
        mask_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, TopDownBackbone):
            raise TypeError(f"{type(backbone).__name__} does not implement encode/modality_dims")
        self.backbone = backbone
        self.modality_dims: dict[str, int] = dict(backbone.modality_dims)
        names = list(self.modality_dims)
        if len(names) < 2:
            raise ValueError(f"top-down feedback needs at least 2 modalities, got {names}")
        needed = {f"{j}__{k}" for k in names for j in names if j != k}
        if set(feedback.keys()) != needed:
            raise ValueError(f"feedback generators {sorted(feedback)} do not match pairs {sorted(needed)}")
        self.feedback = feedback
        self.stage1_grad = stage1_grad
        self.mask_dropout = Dropout(mask_dropout)
        self.check_finite = True

    def masks(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]:
        """Stage I: modality -> mask (B, L, F_k) in [0, 1], zero at padded steps."""
        with torch.set_grad_enabled(self.stage1_grad and torch.is_grad_enabled()):
            reps = self.backbone.encode(features, lengths)
        out: dict[str, Tensor] = {}
        for k in self.modality_dims:
            sources = [j for j in self.modality_dims if j != k]
            total = sum(self.feedback[f"{j}__{k}"](reps[j], lengths[j]) for j in sources)
            mask = total / len(sources)  # (B, L, F_k), Eq. 4
            out[k] = masked_fill_padding(mask, length_mask(lengths[k], mask.size(1)))
        return out

    def auxiliary_loss(self, output: ModelOutput, labels: Tensor, loss_fn: Any) -> Tensor | None:
        """The backbone's auxiliary training loss, if it defines one (see ``TaskModule``)."""
        aux = getattr(self.backbone, "auxiliary_loss", None)
        return aux(output, labels, loss_fn) if aux is not None else None

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L, F_k); lengths: (B,) or per modality -> ModelOutput."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        check_aligned(lengths, features, "top-down feedback")
        masks = self.masks(features, lengths)
        masked = {k: features[k] * self.mask_dropout(masks[k]) for k in self.modality_dims}
        out = self.backbone(masked, lengths)
        return ModelOutput(out.prediction, masks, out.extras)
