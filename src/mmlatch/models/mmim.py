"""MMIM: hierarchical mutual information maximisation (Han, Chen, Poria, EMNLP 2021)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mmlatch.models.registry import register_model
from mmlatch.modules.checks import check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.subnets import fill_output_bias, need_modalities
from mmlatch.modules.utterance import LastStateLSTM, encode_utterances, role, text_utterance


class MMILB(nn.Module):
    """The modality mutual-information lower bound: a Gaussian ``q(y | x)`` with mean and
    log-variance MLPs; ``lld = mean_b sum_d -(mu(x) - y)^2 / (2 exp(logvar(x)))`` (as the
    authors' code, without the log-variance normaliser), and the projection of y whose
    per-class Gaussian entropy is the ``H`` term.

    Args:
        x_dim, y_dim: sizes of the conditioning and the predicted vector.
    """

    def __init__(self, x_dim: int, y_dim: int) -> None:
        super().__init__()
        self.mu = nn.Sequential(nn.Linear(x_dim, y_dim), nn.ReLU(), nn.Linear(y_dim, y_dim))
        self.logvar = nn.Sequential(nn.Linear(x_dim, y_dim), nn.ReLU(), nn.Linear(y_dim, y_dim))
        self.entropy_prj = nn.Sequential(nn.Linear(y_dim, max(y_dim // 4, 1)), nn.Tanh())

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x: (B, x_dim), y: (B, y_dim) -> lld, a scalar."""
        return (-(self.mu(x) - y).pow(2) / 2.0 / self.logvar(x).exp()).sum(dim=-1).mean()


def cpc_nce(x: Tensor, x_pred: Tensor) -> Tensor:
    """Contrastive predictive coding loss of predictions x_pred for x (B, d): InfoNCE with
    the batch's other samples as negatives, cosine scores."""
    x_pred = x_pred / x_pred.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    pos = (x * x_pred).sum(dim=-1)
    neg = torch.logsumexp(x @ x_pred.t(), dim=-1)
    return -(pos - neg).mean()


def class_entropy(z: Tensor, eps: float = 1e-3) -> Tensor:
    """``0.5 logdet`` of the covariance of z (N, d), up to constants (0 for N < 2); ``eps I``
    is added so a group smaller than d stays finite."""
    if z.size(0) < 2:
        return z.new_zeros(())
    c = z - z.mean(dim=0)
    cov = c.t() @ c / z.size(0) + eps * torch.eye(z.size(1), dtype=z.dtype, device=z.device)
    return 0.5 * torch.logdet(cov)


class MMIM(nn.Module):
    """MMIM for any two or more modalities.

    Per modality an utterance vector (text: :func:`~mmlatch.modules.utterance.text_utterance`;
    the others: a BiLSTM's final states, dropout, a linear layer). The anchor modality (text
    when present, else the first) is paired with every other k by an :class:`MMILB`
    (``q(z_k | z_anchor)``; the paper's text-visual and text-audio bounds). The fusion: dropout,
    Linear(sum, d), tanh, Linear(d, d), tanh (= f), Linear(d, num_outputs). One CPC predictor
    per modality (Linear(d, e_k)) scores how well f predicts each z_k.

    The training objective (:meth:`auxiliary_loss`) adds ``alpha * sum_k NCE_k - beta * (lld +
    H)`` (paper Eq. 12) where only the encoders learn from that lld and H, and ``-lld`` with the
    utterance vectors detached trains the bound's own MLPs (the authors' first stage, which
    has its own optimiser: one objective here, one optimiser, the same gradients).
    ``H`` is the Gaussian entropy of the projected ``z_k`` of the positive and of the negative
    samples (labels above / below the training labels' mean, 0 before
    :meth:`init_output_bias`), over this batch and the previous one (``mem_size`` 1). The
    weights are Xavier-normal initialised (as the authors'), except a pretrained text encoder's.

    Args:
        encoders: modality -> ``(x, lengths) -> (B, e_k)``; key order = modality order.
        hidden: d, the fusion size.
        dropout: the fusion's input dropout.
        num_outputs: prediction size.
        alpha, beta: weights of the CPC and the MI terms.
    """

    def __init__(
        self, encoders: nn.ModuleDict, hidden: int, dropout: float, num_outputs: int, alpha: float, beta: float
    ) -> None:
        super().__init__()
        self.encoders = encoders
        self.modality_dims: dict[str, int] = {k: e.input_dim for k, e in encoders.items()}
        names = list(encoders)
        self.anchor = "text" if "text" in encoders else names[0]
        self.others = [k for k in names if k != self.anchor]
        dims = {k: e.output_dim for k, e in encoders.items()}
        self.mi = nn.ModuleDict({k: MMILB(dims[self.anchor], dims[k]) for k in self.others})
        self.fusion = nn.Sequential(
            Dropout(dropout), nn.Linear(sum(dims.values()), hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
        )
        self.out = nn.Linear(hidden, num_outputs)
        self.cpc = nn.ModuleDict({k: nn.Linear(hidden, dims[k]) for k in names})
        self.alpha = alpha
        self.beta = beta
        self.check_finite = True
        self.register_buffer("label_center", torch.zeros(()))
        self._memory: dict[str, tuple[Tensor, Tensor]] = {}
        pretrained = {id(p) for e in encoders.values() if getattr(e, "reads_text", False) for p in e.parameters()}
        for p in self.parameters():
            if p.dim() > 1 and id(p) not in pretrained:  # a pretrained text encoder keeps its weights
                nn.init.xavier_normal_(p)

    def init_output_bias(self, mean: Tensor) -> None:
        """Start every prediction at ``mean``, the training labels' mean (also the split of
        positive and negative samples for ``H``)."""
        fill_output_bias(self.out.bias, mean)
        self.label_center.fill_(float(mean.float().mean()))

    def forward(
        self,
        features: dict[str, Tensor],
        lengths: Tensor | dict[str, Tensor] | None = None,
        texts: Sequence[str] | None = None,
    ) -> ModelOutput:
        """features: modality -> (B, L_k, F_k); lengths: (B,) or per modality; texts: each
        sample's raw text (read by ``text_encoder`` ``finetune`` only) -> ModelOutput;
        extras: ``z_<modality>`` (B, e_k) and ``fusion`` (B, d)."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        z = encode_utterances(self.encoders, features, lengths, texts)
        fused = self.fusion(torch.cat(list(z.values()), dim=1))
        extras = {f"z_{k}": v for k, v in z.items()}
        extras["fusion"] = fused
        return ModelOutput(self.out(fused), None, extras)

    def auxiliary_loss(
        self, output: ModelOutput, labels: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> Tensor:
        """``alpha * NCE - beta * (lld + H) - lld_bound`` (class docstring). Keeps this batch's
        projected positive and negative vectors for the next call's ``H``."""
        extras: dict[str, Any] = output.extras or {}
        z = {k: extras[f"z_{k}"].float() for k in self.modality_dims}
        fused = extras["fusion"].float()
        nce = sum(cpc_nce(z[k], self.cpc[k](fused)) for k in self.modality_dims)
        y = labels.float().mean(dim=1)
        pos, neg = y > self.label_center, y < self.label_center
        anchor = z[self.anchor]
        lld_enc = anchor.new_zeros(())
        lld_bound = anchor.new_zeros(())
        entropy = anchor.new_zeros(())
        for k in self.others:
            mi = self.mi[k]
            frozen = {n: p.detach() for n, p in mi.named_parameters()}
            lld_enc = lld_enc + functional_call(mi, frozen, (anchor, z[k]))  # trains the encoders
            lld_bound = lld_bound + mi(anchor.detach(), z[k].detach())  # trains the bound
            proj = mi.entropy_prj(z[k]).float()  # (B, e_k // 4)
            old_pos, old_neg = self._memory.get(k, (proj[:0], proj[:0]))
            entropy = entropy + 0.5 * (
                class_entropy(torch.cat([old_pos, proj[pos]])) + class_entropy(torch.cat([old_neg, proj[neg]]))
            )
            self._memory[k] = (proj[pos].detach(), proj[neg].detach())
        return self.alpha * nce - self.beta * (lld_enc + entropy) - lld_bound


@register_model(
    "mmim",
    "MMIM (Han et al. 2021): mutual-information bounds between the anchor (text) and each "
    "modality, CPC between the fusion and each modality; unaligned input allowed",
)
def mmim(
    modality_dims: dict[str, int],
    *,
    text_encoder: str = "frozen",
    text_hidden: int = 128,
    text_model: str | None = None,
    text_pooling: str = "cls",
    text_lr: float | None = 5e-5,
    text_weight_decay: float | None = 1e-4,
    text_max_tokens: int | None = None,
    audio_hidden: int = 16,
    visual_hidden: int = 16,
    audio_out: int = 16,
    visual_out: int = 16,
    hidden: int = 128,
    dropout: float = 0.1,
    alpha: float = 0.1,
    beta: float = 0.1,
    num_outputs: int = 1,
) -> MMIM:
    """MMIM. Text: ``text_encoder`` (``frozen``: masked mean of its per-word vectors, the
    frozen-encoder case for all-MiniLM-L6-v2 features; ``lstm``: a BiLSTM of ``text_hidden``;
    ``finetune``: the packaged all-MiniLM-L6-v2 (6 layers, 384-d; ``text_model``: a local BERT
    folder instead, e.g. bert-base-uncased) on each sample's raw text, ``text_pooling`` ``cls`` (its [CLS] vector) or ``mean``, trained at
    ``text_lr`` (0: frozen) with ``text_weight_decay`` (None: the run's), texts cut to
    ``text_max_tokens`` (None: 256));
    the paper fine-tunes BERT-base and reads its [CLS] vector (768). Audio / visual / any other
    modality: BiLSTM ``audio_hidden`` / ``visual_hidden`` -> ``audio_out`` / ``visual_out``
    (MMSA's ``d_ah``, ``d_vh``, ``d_aout``, ``d_vout``). ``hidden`` = MMSA's ``d_prjh``,
    ``dropout`` = ``dropout_prj``. Defaults: MMSA 2.2.1's published MOSI setting
    (configs/zoo/mmim.yaml)."""
    need_modalities("mmim", modality_dims)
    encoders: dict[str, nn.Module] = {}
    for k, f in modality_dims.items():
        if k == "text":
            encoders[k] = text_utterance(
                f, text_encoder, text_hidden, pooling=text_pooling, model=text_model, lr=text_lr,
                weight_decay=text_weight_decay, max_tokens=text_max_tokens,
            )
        else:
            h, o = (audio_hidden, audio_out) if role(k) == "audio" else (visual_hidden, visual_out)
            encoders[k] = LastStateLSTM(f, h, o, bidirectional=True)
    return MMIM(nn.ModuleDict(encoders), hidden, dropout, num_outputs, alpha, beta)
