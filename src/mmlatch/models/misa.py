"""MISA: Modality-Invariant and -Specific Representations (Hazarika, Zimmermann, Poria, ACM MM 2020)."""

from __future__ import annotations

from itertools import combinations
from collections.abc import Sequence
from typing import Any, Callable

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model
from mmlatch.modules.checks import check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.rnn import MaskedBiLSTM
from mmlatch.modules.subnets import fill_output_bias, need_modalities
from mmlatch.modules.transformer import MultiHeadAttention
from mmlatch.modules.utterance import encode_utterances, text_utterance


class StackedUtteranceLSTM(nn.Module):
    """MISA's sLSTM: two BiLSTM layers with a LayerNorm between them; the final hidden states
    of both layers and both directions, concatenated (B, 4H). Exact under padding.

    Args:
        input_dim: F.
        hidden: H per direction (MISA: the modality's feature size).
    """

    def __init__(self, input_dim: int, hidden: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = 4 * hidden
        self.rnn1 = MaskedBiLSTM(input_dim, hidden, merge="concat")
        self.norm = nn.LayerNorm(2 * hidden)
        self.rnn2 = MaskedBiLSTM(2 * hidden, hidden, merge="concat")

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F), lengths: (B,) -> (B, 4H)."""
        f1, b1 = self.rnn1.directions(x, lengths)  # (B, L, H) each
        rows = torch.arange(x.size(0), device=x.device)
        last = lengths.to(x.device) - 1
        h1 = torch.cat([f1[rows, last], b1[:, 0]], dim=1)  # (B, 2H)
        h2 = self.rnn2.last_hidden(self.norm(torch.cat([f1, b1], dim=2)), lengths)  # (B, 2H)
        return torch.cat([h1, h2], dim=1)


class PostNormLayer(nn.Module):
    """A post-LayerNorm transformer encoder layer with ReLU (``nn.TransformerEncoderLayer``'s
    defaults: FFN 2048, dropout 0.1 on attention weights and both residual branches), written
    out so it exports to ONNX (PyTorch's fused inference kernel does not).

    Args:
        dim: d.
        heads: attention heads.
        ffn: feed-forward width.
        dropout: the dropouts.
    """

    def __init__(self, dim: int, heads: int, ffn: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(dim, heads, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(), Dropout(dropout), nn.Linear(ffn, dim))
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, N, d), every token attends every token -> (B, N, d)."""
        everything = torch.zeros(x.size(0) * self.attn.heads, 1, x.size(1), dtype=x.dtype, device=x.device)
        x = self.norm1(x + self.dropout(self.attn(x, x, everything)))
        return self.norm2(x + self.dropout(self.ff(x)))


def diff_loss(a: Tensor, b: Tensor) -> Tensor:
    """MISA's soft orthogonality: ``||A^T B||_F^2 / (d_a d_b)`` of the batch-centred,
    row-normalised (norms detached) codes a, b (B, d)."""
    a = a - a.mean(dim=0, keepdim=True)
    b = b - b.mean(dim=0, keepdim=True)
    a = a / (a.norm(dim=1, keepdim=True).detach() + 1e-6)
    b = b / (b.norm(dim=1, keepdim=True).detach() + 1e-6)
    return (a.t() @ b).pow(2).mean()


def cmd(a: Tensor, b: Tensor, moments: int = 5) -> Tensor:
    """Central Moment Discrepancy (Zellinger et al. 2017) of a, b (B, d): the distance of the
    means plus those of the central moments 2..``moments``. (A 1e-12 under each square root
    keeps the gradient finite when two moments coincide, e.g. a batch of one.)"""

    def dist(x: Tensor, y: Tensor) -> Tensor:
        return ((x - y).pow(2).sum() + 1e-12).sqrt()

    ma, mb = a.mean(dim=0), b.mean(dim=0)
    total = dist(ma, mb)
    ca, cb = a - ma, b - mb
    for k in range(2, moments + 1):
        total = total + dist(ca.pow(k).mean(dim=0), cb.pow(k).mean(dim=0))
    return total


class MISA(nn.Module):
    """MISA for any two or more modalities.

    Per modality: an utterance vector (text: :func:`~mmlatch.modules.utterance.text_utterance`;
    the others: :class:`StackedUtteranceLSTM`), projected to d (linear, ReLU, LayerNorm) =
    ``u_k``; a private code ``p_k = sigmoid(P_k u_k)`` and a shared code ``s_k = sigmoid(S u_k)``
    (one S for all modalities); a reconstruction ``r_k = R_k (p_k + s_k)``. The 2n codes go
    through one transformer layer as a sequence of 2n tokens (:class:`PostNormLayer`, 2 heads), are concatenated and go through Linear(2nd, nd), dropout,
    ReLU, Linear(nd, num_outputs).

    The training objective adds (:meth:`auxiliary_loss`) ``diff_weight * L_diff +
    sim_weight * L_sim + recon_weight * L_recon``: L_diff the soft orthogonality of each
    (p_k, s_k) and of every pair of private codes; L_sim the CMD (5 moments) of every pair of
    shared codes, averaged (MISA's setting ``use_cmd_sim``; the adversarial alternative is not
    built); L_recon the mean squared error of r_k to u_k, averaged.

    Args:
        encoders: modality -> ``(x, lengths) -> (B, e_k)`` with ``output_dim``; key order is
            the model's modality order.
        hidden: d.
        dropout: dropout of the fusion layer.
        num_outputs: prediction size.
        diff_weight, sim_weight, recon_weight: the auxiliary losses' weights.
        heads: attention heads of the fusion transformer.
    """

    def __init__(
        self,
        encoders: nn.ModuleDict,
        hidden: int,
        dropout: float,
        num_outputs: int,
        diff_weight: float,
        sim_weight: float,
        recon_weight: float,
        heads: int = 2,
    ) -> None:
        super().__init__()
        self.encoders = encoders
        self.modality_dims: dict[str, int] = {k: e.input_dim for k, e in encoders.items()}
        n = len(encoders)
        self.project = nn.ModuleDict({
            k: nn.Sequential(nn.Linear(e.output_dim, hidden), nn.ReLU(), nn.LayerNorm(hidden))
            for k, e in encoders.items()
        })
        self.private = nn.ModuleDict({k: nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid()) for k in encoders})
        self.shared = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
        self.recon = nn.ModuleDict({k: nn.Linear(hidden, hidden) for k in encoders})
        self.transformer = PostNormLayer(hidden, heads)
        self.fusion = nn.Sequential(
            nn.Linear(2 * n * hidden, n * hidden), Dropout(dropout), nn.ReLU(), nn.Linear(n * hidden, num_outputs)
        )
        self.diff_weight = diff_weight
        self.sim_weight = sim_weight
        self.recon_weight = recon_weight
        self.check_finite = True

    def init_output_bias(self, mean: Tensor) -> None:
        """Start every prediction at ``mean`` (num_outputs,), the training labels' mean."""
        fill_output_bias(self.fusion[-1].bias, mean)

    def forward(
        self,
        features: dict[str, Tensor],
        lengths: Tensor | dict[str, Tensor] | None = None,
        texts: Sequence[str] | None = None,
    ) -> ModelOutput:
        """features: modality -> (B, L_k, F_k); lengths: (B,) or per modality; texts: each
        sample's raw text (read by ``text_encoder`` ``finetune`` only) -> ModelOutput
        with extras ``utterance``, ``private``, ``shared``, ``reconstruction`` (B, n, d)."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        names = list(self.modality_dims)
        z = encode_utterances(self.encoders, features, lengths, texts)
        u = [self.project[k](z[k]) for k in names]  # (B, d) each
        p = [self.private[k](x) for k, x in zip(names, u)]
        s = [self.shared(x) for x in u]
        r = [self.recon[k](a + b) for k, a, b in zip(names, p, s)]
        tokens = self.transformer(torch.stack(p + s, dim=1))  # (B, 2n, d)
        prediction = self.fusion(tokens.flatten(1))
        extras = {
            "utterance": torch.stack(u, 1), "private": torch.stack(p, 1),
            "shared": torch.stack(s, 1), "reconstruction": torch.stack(r, 1),
        }
        return ModelOutput(prediction, None, extras)

    def auxiliary_loss(
        self, output: ModelOutput, labels: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> Tensor:
        """``diff_weight * L_diff + sim_weight * L_sim + recon_weight * L_recon`` (class
        docstring); the labels are not used."""
        extras: dict[str, Any] = output.extras or {}
        u, p, s, r = (extras[k].float() for k in ("utterance", "private", "shared", "reconstruction"))
        n = u.size(1)
        diff = sum(diff_loss(p[:, i], s[:, i]) for i in range(n))
        diff = diff + sum(diff_loss(p[:, i], p[:, j]) for i, j in combinations(range(n), 2))
        pairs = list(combinations(range(n), 2))
        sim = sum(cmd(s[:, i], s[:, j]) for i, j in pairs) / len(pairs)
        recon = (r - u).pow(2).mean()  # = the mean over modalities of each one's MSE
        return self.diff_weight * diff + self.sim_weight * sim + self.recon_weight * recon


@register_model(
    "misa",
    "MISA (Hazarika et al. 2020): modality-invariant (shared) and -specific (private) codes, "
    "orthogonality/CMD/reconstruction losses, transformer fusion; unaligned input allowed",
)
def misa(
    modality_dims: dict[str, int],
    *,
    hidden: int = 128,
    dropout: float = 0.2,
    rnn_hidden: int | None = None,
    text_encoder: str = "frozen",
    text_hidden: int = 128,
    text_model: str | None = None,
    text_pooling: str = "mean",
    text_lr: float | None = 5e-5,
    text_weight_decay: float | None = None,
    text_max_tokens: int | None = None,
    diff_weight: float = 0.1,
    sim_weight: float = 0.3,
    recon_weight: float = 1.0,
    num_outputs: int = 1,
) -> MISA:
    """MISA. Text: ``text_encoder`` (``frozen``: the masked mean of its per-word vectors, the
    frozen-encoder case for all-MiniLM-L6-v2 features; ``lstm``: a BiLSTM of ``text_hidden``;
    ``finetune``: the packaged all-MiniLM-L6-v2 (6 layers, 384-d; ``text_model``: a local BERT
    folder instead, e.g. bert-base-uncased) on each sample's raw text, ``text_pooling`` ``mean`` of the last layer over its tokens or ``cls``, trained at
    ``text_lr`` (0: frozen) with ``text_weight_decay`` (None: the run's), texts cut to
    ``text_max_tokens`` (None: 256));
    the paper fine-tunes BERT-base and takes the mean of its last layer. Other modalities:
    the sLSTM of size ``rnn_hidden`` (None: the modality's feature size, as MMSA 2.2.1).
    d = ``hidden``. Defaults: MMSA 2.2.1's published MOSI setting (configs/zoo/misa.yaml).
    """
    need_modalities("misa", modality_dims)
    encoders: dict[str, nn.Module] = {}
    for k, f in modality_dims.items():
        if k == "text":
            encoders[k] = text_utterance(
                f, text_encoder, text_hidden, pooling=text_pooling, model=text_model, lr=text_lr,
                weight_decay=text_weight_decay, max_tokens=text_max_tokens,
            )
        else:
            encoders[k] = StackedUtteranceLSTM(f, rnn_hidden or f)
    return MISA(nn.ModuleDict(encoders), hidden, dropout, num_outputs, diff_weight, sim_weight, recon_weight)
