"""MCTN (Pham et al., AAAI 2019, "Found in Translation"), a Table 1 comparator."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model
from mmlatch.modules.checks import check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.masking import length_mask, masked_fill_padding
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.rnn import MaskedBiLSTM
from mmlatch.modules.transformer import last_real_step


def stretch(states: Tensor, lengths: Tensor, target_lengths: Tensor, max_target: int) -> Tensor:
    """Read ``states`` at the source step covering each target step.

    Target step t of a sample with n source and m target steps reads source step
    ``floor(t n / m)`` (identity when m = n, i.e. on word-aligned data).

    Args:
        states: (B, L_s, H) source-side states.
        lengths: (B,) n; target_lengths: (B,) m.
        max_target: padded target length.
    Returns:
        (B, L_t, H).
    """
    t = torch.arange(max_target, device=states.device).unsqueeze(0)  # (1, L_t)
    m = target_lengths.to(states.device).unsqueeze(1).clamp(min=1)
    n = lengths.to(states.device).unsqueeze(1)
    idx = torch.div(t * n, m, rounding_mode="floor").clamp(max=states.size(1) - 1)  # (B, L_t)
    return states.gather(1, idx.unsqueeze(2).expand(-1, -1, states.size(2)))


class Seq2SeqEncoder(nn.Module):
    """Bidirectional LSTM, directions summed per step (MCTN's encoders).

    Args:
        input_dim: feature size of the sequence it reads.
        hidden: H.
    """

    def __init__(self, input_dim: int, hidden: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.hidden = hidden
        self.rnn = MaskedBiLSTM(input_dim, hidden, merge="concat")

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, L, F), lengths: (B,) -> states (B, L, H) (zero at padding) and the final
        state (B, H): forward state after the last real step + backward state after step 0."""
        out = self.rnn(x, lengths)  # (B, L, 2H)
        fwd, bwd = out[..., : self.hidden], out[..., self.hidden :]
        states = masked_fill_padding(fwd + bwd, length_mask(lengths, x.size(1)))
        final = last_real_step(fwd, lengths) + bwd[:, 0]
        return states, final


class Seq2SeqDecoder(nn.Module):
    """LSTM decoder: reads the stretched encoder states, a linear layer gives the target features.

    Args:
        hidden: H of the encoder states.
        output_dim: the target modality's feature size.
    """

    def __init__(self, hidden: int, output_dim: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, output_dim)

    def forward(self, states: Tensor, lengths: Tensor, target_lengths: Tensor, max_target: int) -> Tensor:
        """states: (B, L_s, H) -> predicted target (B, L_t, F_t), zero at padded target steps."""
        h, _ = self.rnn(stretch(states, lengths, target_lengths, max_target))
        return masked_fill_padding(self.out(h), length_mask(target_lengths, max_target))


def masked_mse(pred: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
    """Per-sample mean squared error over real steps and features: (B, L, F) x2, (B,) -> (B,)."""
    mask = length_mask(lengths, target.size(1)).unsqueeze(2).to(pred.dtype)  # (B, L, 1)
    sq = (pred - target).pow(2) * mask
    return sq.sum(dim=(1, 2)) / (lengths.to(pred.dtype) * target.size(2))


class MCTN(nn.Module):
    """Multimodal Cyclic Translation Network (Pham, Liang, Manzini, Morency, Poczos, "Found in
    Translation: Learning Robust Joint Representations by Cyclic Translations Between
    Modalities", AAAI 2019), hierarchical form for three (or more) modalities.

    Equations (S the source modality, T_1, T_2, ... the targets, e.g. text -> visual -> audio):

    1. Level 1, cyclic translation: ``E_1 = Enc_1(X_S)``; ``X^_T1 = Dec_1(E_1)``;
       back-translation ``X^_S = Dec_b(Enc_b(X^_T1))``.
       Losses ``L_t1 = MSE(X^_T1, X_T1)`` and ``L_c = MSE(X^_S, X_S)``.
    2. Level j >= 2: ``E_j = Enc_j(E_(j-1))`` (the previous encoder's states, the joint
       representation so far); ``X^_Tj = Dec_j(E_j)``; ``L_tj = MSE(X^_Tj, X_Tj)`` (no cycle:
       there is no ground truth for the joint representation).
    3. Prediction from the last encoder's final state: ``y^ = head(E_last)``.
    4. Training loss ``L_task + lambda_t sum_j L_tj + lambda_c L_c``; the MCTN authors' settings
       (hierarchical config of their public code): every translation and cycle loss weighs 0.1,
       the task loss 1.0. The task loss is added by the training loop; the rest is
       :meth:`auxiliary_loss` (the hook HCT-MG uses).

    At test time (``eval()``) only the source modality is read: the decoders, the
    back-translation and the target modalities are not used, so a prediction does not change
    when the targets are replaced by anything of the right shape (the input checks still look at
    every modality's shape and values).

    Choices the paper leaves open, made here:

    * **Encoders**: bidirectional LSTMs, directions summed (public code: ``merge_mode='sum'``),
      hidden 32 (their hierarchical config), one layer each. The final state of an encoder is
      the forward state after the last real step plus the backward state after step 0.
    * **Decoders**: non-autoregressive: an LSTM reads, for every target step, the encoder state
      of the source step that covers it (:func:`stretch`; the same step on aligned data, equal
      chunks of the target per source step on unaligned data), then a linear layer gives the
      target features. The public code decodes autoregressively with attention; reading the
      encoder states directly is faster and exact under padding.
    * **Back-translation** has its own encoder/decoder (the target's feature size differs from
      the source's).
    * **Head**: Linear(H, 32) -> ReLU -> dropout -> Linear(32, num_outputs) (public code:
      regression hidden 32; its L2 factor 0.01 on the head is not used).
    * **Modality roles**: ``source`` (``text`` when present, else the first modality) and
      ``targets`` (comma-separated; default: ``visual`` first if present, then the others in
      the data's order), so on MOSEI it is text -> visual -> audio as in the paper; with two
      modalities it is the bimodal MCTN (one cyclic level).

    No ``+ MMLatch`` variant: at test time only the source is read, so masks on the target
    modalities could not change a prediction and the source's mask would come from no other
    modality's representation.

    Args:
        source: name of the source modality.
        targets: the target modalities in translation order.
        modality_dims: modality -> feature size (the data's order).
        encoders: one :class:`Seq2SeqEncoder` per level (the first reads the source).
        decoders: one :class:`Seq2SeqDecoder` per level (level j decodes ``targets[j]``).
        back_encoder, back_decoder: the back-translation of level 1 (target 1 -> source).
        head: ``(B, H) -> (B, num_outputs)``.
        translation_weight, cycle_weight: loss weights.
    """

    def __init__(
        self,
        source: str,
        targets: list[str],
        modality_dims: dict[str, int],
        encoders: nn.ModuleList,
        decoders: nn.ModuleList,
        back_encoder: Seq2SeqEncoder,
        back_decoder: Seq2SeqDecoder,
        head: nn.Module,
        translation_weight: float = 0.1,
        cycle_weight: float = 0.1,
    ) -> None:
        super().__init__()
        if not targets:
            raise ValueError("MCTN needs at least one target modality")
        if len(encoders) != len(targets) or len(decoders) != len(targets):
            raise ValueError(f"{len(targets)} target(s) need as many encoders and decoders")
        if set(modality_dims) != {source, *targets} or source in targets:
            raise ValueError(f"source {source!r} and targets {targets} must be the modalities {list(modality_dims)}, once each")
        self.source = source
        self.targets = list(targets)
        self.modality_dims: dict[str, int] = dict(modality_dims)
        self.encoders = encoders
        self.decoders = decoders
        self.back_encoder = back_encoder
        self.back_decoder = back_decoder
        self.head = head
        self.translation_weight = translation_weight
        self.cycle_weight = cycle_weight
        self.check_finite = True

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L_k, F_k); lengths: (B,) or per modality -> ModelOutput.

        In training mode ``extras`` holds per-sample MSEs ``translation_<target>`` and
        ``cycle`` (B,); in eval mode only the source is read and ``extras`` is None.
        """
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        x, n = features[self.source], lengths[self.source]
        extras: dict[str, Tensor] = {}
        states, final = x, x.new_zeros(())  # overwritten by the first level
        for level, (enc, dec, target) in enumerate(zip(self.encoders, self.decoders, self.targets)):
            states, final = enc(states, n)  # (B, L_s, H), (B, H)
            if not self.training:
                continue  # test time: the targets are never read
            y, m = features[target], lengths[target]
            y_hat = dec(states, n, m, y.size(1))  # (B, L_t, F_t)
            extras[f"translation_{target}"] = masked_mse(y_hat, y, m)
            if level == 0:
                back, _ = self.back_encoder(y_hat, m)
                x_hat = self.back_decoder(back, m, n, x.size(1))  # (B, L_s, F_s)
                extras["cycle"] = masked_mse(x_hat, x, n)
        return ModelOutput(self.head(final), None, extras or None)

    def auxiliary_loss(
        self, output: ModelOutput, labels: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> Tensor | None:
        """``translation_weight * sum_j L_tj + cycle_weight * L_c`` (batch means); None at eval."""
        extras: dict[str, Any] = output.extras or {}
        if not extras:
            return None
        translation = sum(extras[f"translation_{t}"].float().mean() for t in self.targets)
        return self.translation_weight * translation + self.cycle_weight * extras["cycle"].float().mean()


def _roles(modality_dims: dict[str, int], source: str | None, targets: str | None) -> tuple[str, list[str]]:
    names = list(modality_dims)
    if len(names) < 2:
        raise ValueError(f"MCTN translates between modalities: it needs at least 2, got {names}")
    src = source or ("text" if "text" in modality_dims else names[0])
    if src not in modality_dims:
        raise ValueError(f"mctn: source modality {src!r} is not among the data's modalities {names}")
    if targets:
        order = [t.strip() for t in targets.split(",") if t.strip()]
    else:
        rest = [k for k in names if k != src]
        order = (["visual"] if "visual" in rest else []) + [k for k in rest if k != "visual"]
    if sorted(order) != sorted(k for k in names if k != src):
        raise ValueError(f"mctn: targets {order} must be every modality but the source {src!r}: {names}")
    return src, order


@register_model(
    "mctn",
    "MCTN (Pham et al. 2019): hierarchical cyclic translation text -> visual -> audio; test time reads text only",
)
def mctn(
    modality_dims: dict[str, int],
    *,
    hidden: int = 32,
    head_hidden: int = 32,
    dropout: float = 0.0,
    translation_weight: float = 0.1,
    cycle_weight: float = 0.1,
    source: str | None = None,
    targets: str | None = None,
    num_outputs: int = 1,
) -> MCTN:
    """MCTN (see :class:`MCTN` for the equations and choices).

    ``source`` None: ``text`` if present, else the first modality; ``targets`` None: visual
    first, then the other modalities in data order.
    """
    src, order = _roles(modality_dims, source, targets)
    encoders = nn.ModuleList(
        Seq2SeqEncoder(modality_dims[src] if j == 0 else hidden, hidden) for j in range(len(order))
    )
    decoders = nn.ModuleList(Seq2SeqDecoder(hidden, modality_dims[t]) for t in order)
    head = nn.Sequential(
        nn.Linear(hidden, head_hidden), nn.ReLU(), Dropout(dropout), nn.Linear(head_hidden, num_outputs)
    )
    return MCTN(
        src,
        order,
        modality_dims,
        encoders,
        decoders,
        Seq2SeqEncoder(modality_dims[order[0]], hidden),
        Seq2SeqDecoder(hidden, modality_dims[src]),
        head,
        translation_weight,
        cycle_weight,
    )
