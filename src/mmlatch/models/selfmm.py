"""Self-MM: self-supervised multi-task learning with generated unimodal labels (Yu, Xu, Yuan,
Wu, AAAI 2021)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model
from mmlatch.modules.checks import check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.subnets import fill_output_bias, need_modalities
from mmlatch.modules.utterance import LastStateLSTM, encode_utterances, role, text_utterance

_EPS = 1e-8


def unimodal_labels(y: Tensor, delta_s: Tensor, delta_m: Tensor, center: Tensor | float, H: float) -> Tensor:
    """ULGM's unimodal labels (paper Eq. 10-11, as MMSA 2.2.1 computes them), around ``center``:
    ``c + clip(0.5 alpha (y - c) + 0.5 (y - c + delta_s - delta_m), -H, H)``,
    ``alpha = delta_s / delta_m``. All (B,)."""
    ym = y - center
    alpha = delta_s / (delta_m + _EPS)
    return center + (0.5 * alpha * ym + 0.5 * (ym + delta_s - delta_m)).clamp(-H, H)


class Head(nn.Module):
    """Dropout, Linear(in, d), ReLU (= the features ULGM reads), Linear(d, d), ReLU, Linear(d, out)."""

    def __init__(self, input_dim: int, hidden: int, num_outputs: int, dropout: float) -> None:
        super().__init__()
        self.dropout = Dropout(dropout)
        self.first = nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU())
        self.rest = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_outputs))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, in) -> features (B, d), prediction (B, out)."""
        h = self.first(self.dropout(x))
        return h, self.rest(h)


class SelfMM(nn.Module):
    """Self-MM for any two or more modalities.

    Per modality an utterance vector z_k (text: :func:`~mmlatch.modules.utterance.text_utterance`;
    the others: a unidirectional LSTM's last real state, dropout, a linear layer); the
    multimodal head reads their concatenation, one unimodal head per modality reads z_k
    (each head: dropout, 3 linear layers, ReLU between). The prediction is the multimodal
    head's; the unimodal predictions are in ``extras["unimodal"]`` (B, n, num_outputs).

    Training (:meth:`auxiliary_loss`): each unimodal head learns a label generated from the
    multimodal label by the Unimodal Label Generation Module (ULGM, paper Sec. 3.3): with
    ``c`` the training labels' mean (MOSI's 0 in the paper; :meth:`init_output_bias` sets it),
    positive and negative class centres of every head's first-layer features, and per sample
    ``delta = (d_neg - d_pos) / d_pos`` (distances to the centres),
    ``y_s = c + 0.5 alpha (y_m - c) + 0.5 (y_m - c + delta_s - delta_m)`` with
    ``alpha = delta_s / delta_m``, clipped to ``c +/- H``. The loss is
    ``mean(tanh|y_s - y_m| * |yhat_s - y_s|)`` per modality (the paper's weighting).

    What differs from the paper (and MMSA 2.2.1): the batches carry no sample index, so there
    is no per-sample label memory: the centres are exponential moving averages of the batch's
    class means (``momentum`` per step; MMSA: the mean of every training sample's latest
    features), and a sample's unimodal label is generated from this step's features alone
    (MMSA: averaged over epochs, ``(n-1)/(n+1)`` old + ``2/(n+1)`` new, starting from y_m).

    Args:
        encoders: modality -> ``(x, lengths) -> (B, e_k)`` with ``output_dim``.
        fusion_head: the multimodal head over ``sum e_k``.
        heads: modality -> its unimodal head.
        H: the clip of the generated labels around c.
        momentum: the centres' moving-average momentum.
    """

    def __init__(
        self, encoders: nn.ModuleDict, fusion_head: Head, heads: nn.ModuleDict, H: float = 3.0, momentum: float = 0.9
    ) -> None:
        super().__init__()
        self.encoders = encoders
        self.fusion_head = fusion_head
        self.heads = heads
        self.modality_dims: dict[str, int] = {k: e.input_dim for k, e in encoders.items()}
        self.H = H
        self.momentum = momentum
        self.check_finite = True
        self.register_buffer("label_center", torch.zeros(()))
        n = len(encoders)
        # centres per head (0 = multimodal, 1.. = modalities) and class (0 = positive, 1 = negative)
        dims = [fusion_head.first[0].out_features] + [h.first[0].out_features for h in heads.values()]
        for i, d in enumerate(dims):
            self.register_buffer(f"centers_{i}", torch.zeros(2, d))
        self.register_buffer("centers_seen", torch.zeros(n + 1, 2, dtype=torch.bool))

    def init_output_bias(self, mean: Tensor) -> None:
        """Start every prediction (multimodal and unimodal) at ``mean``, the training labels'
        mean, which is also ULGM's centre ``c``."""
        for head in (self.fusion_head, *self.heads.values()):
            fill_output_bias(head.rest[-1].bias, mean)
        self.label_center.fill_(float(mean.float().mean()))

    def forward(
        self,
        features: dict[str, Tensor],
        lengths: Tensor | dict[str, Tensor] | None = None,
        texts: Sequence[str] | None = None,
    ) -> ModelOutput:
        """features: modality -> (B, L_k, F_k); lengths: (B,) or per modality; texts: each
        sample's raw text (read by ``text_encoder`` ``finetune`` only) -> ModelOutput;
        extras: ``unimodal`` (B, n, out) and ``head_features_<i>`` (B, d_i), i = 0 multimodal."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        z = encode_utterances(self.encoders, features, lengths, texts)
        fused, prediction = self.fusion_head(torch.cat(list(z.values()), dim=1))
        extras = {"head_features_0": fused}
        unimodal = []
        for i, (k, head) in enumerate(self.heads.items(), start=1):
            h, y = head(z[k])
            extras[f"head_features_{i}"] = h
            unimodal.append(y)
        extras["unimodal"] = torch.stack(unimodal, dim=1)
        return ModelOutput(prediction, None, extras)

    @torch.no_grad()
    def _update_centers(self, i: int, h: Tensor, y: Tensor) -> Tensor:
        """Move head i's class centres towards the batch's class means; returns them (2, d)."""
        centers = getattr(self, f"centers_{i}")
        for c, members in enumerate((y > self.label_center, y < self.label_center)):
            if bool(members.any()):
                mean = h[members].mean(dim=0)
                if bool(self.centers_seen[i, c]):
                    centers[c].mul_(self.momentum).add_(mean, alpha=1 - self.momentum)
                else:
                    centers[c].copy_(mean)
                    self.centers_seen[i, c] = True
        return centers

    @staticmethod
    def _delta(h: Tensor, centers: Tensor) -> Tensor:
        d_pos = (h - centers[0]).norm(dim=-1)
        d_neg = (h - centers[1]).norm(dim=-1)
        return (d_neg - d_pos) / (d_pos + _EPS)

    def auxiliary_loss(
        self, output: ModelOutput, labels: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> Tensor:
        """The unimodal heads' weighted L1 losses to their generated labels (class docstring);
        also updates the class centres (training only: the trainer calls it on training batches)."""
        extras: dict[str, Any] = output.extras or {}
        y = labels.float().mean(dim=1)  # (B,); one regression output in the paper
        feats = [extras[f"head_features_{i}"].detach().float() for i in range(len(self.heads) + 1)]
        centers = [self._update_centers(i, h, y) for i, h in enumerate(feats)]
        unimodal = extras["unimodal"].float()  # (B, n, out)
        if not bool(self.centers_seen.all()):  # one class not seen yet: no labels to generate
            return unimodal.sum() * 0.0
        c = self.label_center
        with torch.no_grad():
            delta_m = self._delta(feats[0], centers[0])
        loss = unimodal.new_zeros(())
        for i in range(1, len(feats)):
            with torch.no_grad():
                ys = unimodal_labels(y, self._delta(feats[i], centers[i]), delta_m, c, self.H)
                weight = torch.tanh((ys - y).abs())
            pred = unimodal[:, i - 1]  # (B, out)
            loss = loss + (weight[:, None] * (pred - ys[:, None]).abs()).mean()
        return loss


@register_model(
    "self-mm",
    "Self-MM (Yu et al. 2021): unimodal heads trained on self-generated unimodal labels (ULGM) "
    "beside the multimodal head; unaligned input allowed",
)
def self_mm(
    modality_dims: dict[str, int],
    *,
    text_encoder: str = "frozen",
    text_hidden: int = 128,
    text_model: str | None = None,
    text_pooling: str = "cls",
    text_lr: float | None = 5e-5,
    text_weight_decay: float | None = 1e-3,
    text_max_tokens: int | None = None,
    audio_hidden: int = 16,
    visual_hidden: int = 32,
    audio_out: int = 16,
    visual_out: int = 32,
    rnn_dropout: float = 0.0,
    post_fusion_dim: int = 128,
    post_text_dim: int = 32,
    post_audio_dim: int = 16,
    post_visual_dim: int = 32,
    post_fusion_dropout: float = 0.0,
    post_text_dropout: float = 0.1,
    post_audio_dropout: float = 0.1,
    post_visual_dropout: float = 0.0,
    H: float = 3.0,
    center_momentum: float = 0.9,
    num_outputs: int = 1,
) -> SelfMM:
    """Self-MM. Text: ``text_encoder`` (``frozen``: masked mean of its per-word vectors, the
    frozen-encoder case for all-MiniLM-L6-v2 features, text_out = its size; ``lstm``: a BiLSTM
    of ``text_hidden``; ``finetune``: the packaged all-MiniLM-L6-v2 (6 layers, 384-d; ``text_model``: a local BERT
    folder instead, e.g. bert-base-uncased) on each sample's raw text, ``text_pooling`` ``cls`` (its [CLS] vector) or ``mean``, trained at
    ``text_lr`` (0: frozen) with ``text_weight_decay`` (None: the run's), texts cut to
    ``text_max_tokens`` (None: 256)); the paper fine-tunes BERT-base and reads its [CLS] vector (768).
    Audio / visual / any other modality: LSTM ``audio_hidden`` / ``visual_hidden`` ->
    ``audio_out`` / ``visual_out``. Head sizes and dropouts per role. Defaults: MMSA 2.2.1's
    published MOSI setting (configs/zoo/self-mm.yaml)."""
    need_modalities("self-mm", modality_dims)
    encoders: dict[str, nn.Module] = {}
    heads: dict[str, nn.Module] = {}
    sizes = {
        "audio": (audio_hidden, audio_out, post_audio_dim, post_audio_dropout),
        "visual": (visual_hidden, visual_out, post_visual_dim, post_visual_dropout),
    }
    for k, f in modality_dims.items():
        if k == "text":
            encoders[k] = text_utterance(
                f, text_encoder, text_hidden, pooling=text_pooling, model=text_model, lr=text_lr,
                weight_decay=text_weight_decay, max_tokens=text_max_tokens,
            )
            heads[k] = Head(encoders[k].output_dim, post_text_dim, num_outputs, post_text_dropout)
        else:
            hidden, out, post, drop = sizes[role(k)]
            encoders[k] = LastStateLSTM(f, hidden, out, dropout=rnn_dropout)
            heads[k] = Head(out, post, num_outputs, drop)
    total = sum(e.output_dim for e in encoders.values())
    fusion = Head(total, post_fusion_dim, num_outputs, post_fusion_dropout)
    return SelfMM(nn.ModuleDict(encoders), fusion, nn.ModuleDict(heads), H, center_momentum)
