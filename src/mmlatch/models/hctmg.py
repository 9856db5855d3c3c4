"""HCT-MG: a lightweight hierarchical crossmodal transformer with modality gating."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model, register_topdown
from mmlatch.modules.checks import check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.transformer import TransformerEncoder, TransformerSequenceEncoder, masked_mean


class ModalityGate(nn.Module):
    """Per-sample modality weights from the pooled unimodal representations.

    ``softmax(W2 relu(W1 [p_1; ...; p_n]))``.

    Args:
        num_modalities: n.
        dim: d, size of each pooled representation.
    """

    def __init__(self, num_modalities: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(num_modalities * dim, dim), nn.ReLU(), nn.Linear(dim, num_modalities))

    def forward(self, pooled: Tensor) -> Tensor:
        """pooled: (B, n, d) -> (B, n) weights summing to 1."""
        return torch.softmax(self.net(pooled.flatten(1)), dim=1)


class HCTMG(nn.Module):
    """Hierarchical Crossmodal Transformer with Modality Gating (after Wang et al., 2023).

    The paper's abstract fixes the idea (a learned gate picks the primary modality by its
    contribution, per training batch; the primary as query hierarchically fuses the
    auxiliaries with crossmodal transformer blocks; < 1M parameters). Choices made here,
    where it leaves things open:

    * **Unimodal encoders**: per modality a bias-free temporal Conv1d to d, MulT's scaled
      sinusoidal positions, and a small pre-LN self-attention transformer
      (:class:`TransformerSequenceEncoder`). :meth:`encode` returns their outputs, (B, L, d),
      which is also what MMLatch's feedback reads in ``hctmg-mmlatch``.
    * **Unimodal heads**: masked mean over real steps -> one linear head per modality,
      ``extras["unimodal"]`` (B, n, num_outputs). They are trained on the task loss of their
      own modality (:meth:`auxiliary_loss`, weight ``aux_weight`` each).
    * **Gate**: an MLP over the n pooled representations -> softmax, ``extras["gate"]``
      (B, n). Its target is how well each modality alone does on the batch:
      ``softmax(-L_m / tau)`` of the unimodal heads' (detached) batch losses L_m; the gate
      is trained by KL(target || gate) (weight ``gate_weight``).
    * **Primary and order**: in training, modalities are ranked by the batch-mean gate
      weights (the primary is the top one: a choice per training batch); an exponential
      moving average of the batch-mean weights (buffer ``gate_ema``, ``momentum``) is kept.
      In evaluation the ranking comes from ``gate_ema`` only, so a sample's prediction never
      depends on the rest of its batch. A freshly built model (uniform ``gate_ema``) ranks
      ties in modality order. ``primary`` fixes the primary modality instead (the paper's
      "manual choice"); the gate then only orders the auxiliaries and mixes the unimodal
      predictions. ``extras["primary"]`` says which primary a forward pass used.
    * **Hierarchical fusion**: the primary sequence is the query; stage 1 is a crossmodal
      transformer (MulT's layer: pre-LN, FFN 4d) attending the stronger auxiliary (higher
      weight), stage 2 one attending the other auxiliary with stage 1's output as the query
      (n - 1 stages in general, so 2 modalities use one). Each stage's blocks are SHARED
      across primaries (a stage is "fuse the k-th strongest auxiliary", whoever is primary):
      the model stays small, and every block is trained whichever primary a batch picks. The
      stages add no new positions (the encoders did).
    * **Prediction**: masked mean of the fused primary sequence -> MLP head, PLUS the
      gate-weighted mix of the unimodal predictions, ``sum_m gate_m * unimodal_m``. So the
      gate and the unimodal heads also act on the prediction (and every parameter is trained
      by the task loss alone), and the fused path learns a correction on top of the gated
      unimodal estimate.
    * **Sizes** (preset ``hctmg``): d 40, 2 heads, 2 encoder layers per modality, 5 layers per
      fusion stage (the crossmodal blocks of the authors' related code: d 40, 2 heads, 5
      layers, dropout 0.1); all dropouts 0.1. About 0.34M parameters at MOSEI dims.

    Modalities may be unaligned (each stage masks its keys' padding).

    Args:
        encoders: modality -> unimodal encoder ``(x, lengths) -> (B, L, d)`` with attribute
            ``input_dim``; key order is the model's modality order.
        unimodal_heads: modality -> ``(B, d) -> (B, num_outputs)``.
        gate: ``(B, n, d) -> (B, n)`` weights, e.g. :class:`ModalityGate`.
        stages: n - 1 crossmodal :class:`TransformerEncoder` (cross=True), strongest
            auxiliary first.
        head: ``(B, d) -> (B, num_outputs)`` on the pooled fused sequence.
        dropout: dropout on pooled vectors before the heads.
        momentum: EMA momentum of ``gate_ema``.
        aux_weight: weight of each unimodal head's task loss.
        gate_weight: weight of the gate's KL loss.
        gate_tau: temperature of the gate's target.
        primary: a fixed primary modality (None: chosen by the gate).
    """

    def __init__(
        self,
        encoders: nn.ModuleDict,
        unimodal_heads: nn.ModuleDict,
        gate: nn.Module,
        stages: nn.ModuleList,
        head: nn.Module,
        dropout: float = 0.1,
        momentum: float = 0.1,
        aux_weight: float = 0.5,
        gate_weight: float = 1.0,
        gate_tau: float = 0.1,
        primary: str | None = None,
    ) -> None:
        super().__init__()
        names = list(encoders)
        if primary is not None and primary not in names:
            raise ValueError(f"primary modality {primary!r} is not one of {names}")
        if len(names) < 2:
            raise ValueError(f"HCT-MG needs at least 2 modalities, got {names}")
        if list(unimodal_heads) != names:
            raise ValueError(f"unimodal heads {list(unimodal_heads)} must follow modalities {names}")
        if len(stages) != len(names) - 1:
            raise ValueError(f"{len(names)} modalities need {len(names) - 1} fusion stages, got {len(stages)}")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must lie in (0, 1], got {momentum}")
        if gate_tau <= 0:
            raise ValueError(f"gate_tau must be > 0, got {gate_tau}")
        self.encoders = encoders
        self.unimodal_heads = unimodal_heads
        self.gate = gate
        self.stages = stages
        self.head = head
        self.dropout = Dropout(dropout)
        self.momentum = momentum
        self.aux_weight = aux_weight
        self.gate_weight = gate_weight
        self.gate_tau = gate_tau
        self.primary = primary
        self.modality_dims: dict[str, int] = {k: e.input_dim for k, e in encoders.items()}
        self.representation_dims: dict[str, int] = {k: e.output_dim for k, e in encoders.items()}
        self.register_buffer("gate_ema", torch.full((len(names),), 1.0 / len(names)))
        self.check_finite = True

    def encode(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]:
        """modality -> unimodal encoder output (B, L_k, d), zero at padded steps."""
        return {k: enc(features[k], lengths[k]) for k, enc in self.encoders.items()}

    def fusion_order(self, gate: Tensor) -> list[str]:
        """Modalities ranked for fusion: [primary, strongest auxiliary, ...].

        Training: by the batch mean of ``gate`` (B, n); evaluation: by ``gate_ema``. A fixed
        ``primary`` comes first whatever the gate says; the auxiliaries keep the gate's order.
        """
        weights = gate.detach().mean(dim=0) if self.training else self.gate_ema
        ranks = torch.argsort(-weights.float(), stable=True).tolist()
        names = list(self.modality_dims)
        order = [names[i] for i in ranks]
        if self.primary is not None:
            order = [self.primary] + [k for k in order if k != self.primary]
        return order

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L_k, F_k); lengths: (B,) or per modality -> ModelOutput
        with extras ``gate`` (B, n), ``unimodal`` (B, n, num_outputs) and ``primary`` (B,),
        the index (modality order) of the primary modality used."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        reps = self.encode(features, lengths)
        pooled = torch.stack([masked_mean(reps[k], lengths[k]) for k in reps], dim=1)  # (B, n, d)
        unimodal = torch.stack(
            [head(self.dropout(pooled[:, i])) for i, head in enumerate(self.unimodal_heads.values())], dim=1
        )  # (B, n, out)
        gate = self.gate(pooled)  # (B, n)
        order = self.fusion_order(gate)
        if self.training:
            with torch.no_grad():
                self.gate_ema.lerp_(gate.detach().mean(dim=0).to(self.gate_ema.dtype), self.momentum)
        primary = order[0]
        x = reps[primary]  # (B, L_p, d), the query throughout
        for stage, aux in zip(self.stages, order[1:]):
            x = stage(x, lengths[primary], reps[aux], lengths[aux])
        fused = masked_mean(x, lengths[primary])  # (B, d)
        mixed = (gate.unsqueeze(2) * unimodal).sum(dim=1)  # (B, out), gated unimodal estimate
        prediction = self.head(self.dropout(fused)) + mixed
        primary_index = torch.full(
            (prediction.size(0),), list(self.modality_dims).index(primary), dtype=torch.long, device=prediction.device
        )  # (B,), the primary this forward pass used
        return ModelOutput(prediction, None, {"gate": gate, "unimodal": unimodal, "primary": primary_index})

    def auxiliary_loss(
        self, output: ModelOutput, labels: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> Tensor:
        """Unimodal heads' task losses + the gate's KL to ``softmax(-L_m / tau)``.

        Args:
            output: this model's forward output (its extras are read).
            labels: (B, num_outputs) labels.
            loss_fn: ``(prediction, labels) -> scalar`` mean task loss.
        Returns:
            Scalar ``aux_weight * sum_m L_m + gate_weight * KL``.
        """
        extras: dict[str, Any] = output.extras or {}
        unimodal, gate = extras["unimodal"], extras["gate"]  # (B, n, out), (B, n)
        losses = torch.stack([loss_fn(unimodal[:, i], labels).float() for i in range(unimodal.size(1))])  # (n,)
        target = torch.softmax(-losses.detach() / self.gate_tau, dim=0)  # (n,)
        log_gate = gate.float().clamp_min(1e-12).log()  # (B, n); float: 1e-12 underflows in fp16
        kl = (target * (target.clamp_min(1e-12).log() - log_gate)).sum(dim=1).mean()
        return self.aux_weight * losses.sum() + self.gate_weight * kl


@register_model(
    "hctmg",
    "HCT-MG: lightweight hierarchical crossmodal transformer with modality gating (< 1M params)",
)
def hctmg(
    modality_dims: dict[str, int],
    *,
    hidden: int = 40,
    heads: int = 2,
    encoder_layers: int = 2,
    fusion_layers: int = 5,
    dropout: float = 0.1,
    embed_dropout: float = 0.1,
    kernel_size: int = 1,
    momentum: float = 0.1,
    aux_weight: float = 0.5,
    gate_weight: float = 1.0,
    gate_tau: float = 0.1,
    primary: str | None = None,
    num_outputs: int = 1,
) -> HCTMG:
    """HCT-MG (see :class:`HCTMG` for the choices made).

    HCT-MG with the given sizes; ``dropout`` is used for attention, FFN, residual and heads.
    """
    if heads < 1 or hidden % heads:
        raise ValueError(f"heads ({heads}) must divide hidden ({hidden})")
    names = list(modality_dims)
    encoders = nn.ModuleDict(
        {
            k: TransformerSequenceEncoder(
                f, hidden, heads, encoder_layers, dropout, dropout, dropout, embed_dropout, kernel_size
            )
            for k, f in modality_dims.items()
        }
    )
    stages = nn.ModuleList(
        TransformerEncoder(hidden, heads, fusion_layers, dropout, dropout, dropout, cross=True, embed=False)
        for _ in range(len(names) - 1)
    )
    head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), Dropout(dropout), nn.Linear(hidden, num_outputs))
    return HCTMG(
        encoders,
        nn.ModuleDict({k: nn.Linear(hidden, num_outputs) for k in names}),
        ModalityGate(len(names), hidden),
        stages,
        head,
        dropout,
        momentum,
        aux_weight,
        gate_weight,
        gate_tau,
        primary,
    )


register_topdown(
    "hctmg-mmlatch",
    "hctmg",
    "HCT-MG + MMLatch top-down feedback (LSTM generators read the unimodal encoders)",
)
