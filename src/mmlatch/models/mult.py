"""MulT (Tsai et al., ACL 2019) as a backbone, and MulT + MMLatch (paper Table 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlatch.models.registry import register_model, register_topdown
from mmlatch.modules.checks import check_inputs, has_forward_hooks, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.masking import length_mask, masked_fill_padding
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.transformer import TemporalProjection, TransformerEncoder


class ResidualHead(nn.Module):
    """MulT's output block: ``out(x + W2 drop(relu(W1 x)))``.

    Args:
        dim: input size (n * (n - 1) * d for MulT).
        num_outputs: output size.
        dropout: dropout after the ReLU (MulT's output dropout).
    """

    def __init__(self, dim: int, num_outputs: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj1 = nn.Linear(dim, dim)
        self.proj2 = nn.Linear(dim, dim)
        self.dropout = Dropout(dropout)
        self.out = nn.Linear(dim, num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, D) -> (B, num_outputs)."""
        return self.out(x + self.proj2(self.dropout(F.relu(self.proj1(x)))))


class MulT(nn.Module):
    """Multimodal Transformer: crossmodal transformers for every (target <- source) pair.

    Per modality, a bias-free temporal Conv1d projects the input to d. For every target
    modality t and every other (source) modality s, a crossmodal transformer lets t's sequence
    attend s's (``encoders[t][s]``); t's streams are concatenated, (B, L_t, (n-1) d). That is
    :meth:`encode`'s output (the output of the last crossmodal layer, what MMLatch's feedback
    reads). A self-attention transformer per target runs over it (``memories[t]``); the last
    REAL step of each (by length) is taken, the n of them are concatenated and go through a
    residual block and the output layer.

    Modalities may be unaligned (different lengths per modality). Padded key steps are masked
    in every attention; inputs are zeroed beyond their length before the convolution, so a
    temporal kernel > 1 does not leak padding either. Unlike MulT's public code, a step is
    padding because of ``lengths`` (not because its first feature is 0), and no causal mask is
    applied unless asked for (the public code's store_false ``--attn_mask`` flag turns one on).

    Args:
        projections: modality -> :class:`TemporalProjection` (F_k -> d); key order is the
            model's modality order.
        encoders: target -> (source -> crossmodal :class:`TransformerEncoder`) for every
            source != target, in modality order.
        memories: target -> self-attention :class:`TransformerEncoder` of width (n-1) d.
        head: ``(B, n (n-1) d) -> (B, num_outputs)``, e.g. :class:`ResidualHead`.
    """

    def __init__(
        self,
        projections: nn.ModuleDict,
        encoders: nn.ModuleDict,
        memories: nn.ModuleDict,
        head: nn.Module,
    ) -> None:
        super().__init__()
        names = list(projections)
        if len(names) < 2:
            raise ValueError(f"MulT needs at least 2 modalities, got {names}")
        if list(encoders) != names or list(memories) != names:
            raise ValueError(f"encoders {list(encoders)} / memories {list(memories)} must follow modalities {names}")
        for t in names:
            if sorted(encoders[t]) != sorted(s for s in names if s != t):
                raise ValueError(f"target {t!r} needs one crossmodal encoder per other modality, got {list(encoders[t])}")
        self.projections = projections
        self.encoders = encoders  # crossmodal stacks: what TopDown's Stage I runs
        self.memories = memories
        self.head = head
        self.modality_dims: dict[str, int] = {k: p.input_dim for k, p in projections.items()}
        self.representation_dims: dict[str, int] = {
            t: sum(enc.dim for enc in encoders[t].values()) for t in names
        }
        self.check_finite = True

    def encode(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]:
        """target modality -> its crossmodal streams concatenated, (B, L_t, (n-1) d), zero at padding."""
        proj = {k: p(features[k], lengths[k]) for k, p in self.projections.items()}  # (B, L_k, d)
        out: dict[str, Tensor] = {}
        for t, stacks in self.encoders.items():
            streams = [enc(proj[t], lengths[t], proj[s], lengths[s]) for s, enc in stacks.items()]
            h = torch.cat(streams, dim=2)  # (B, L_t, (n-1) d)
            out[t] = masked_fill_padding(h, length_mask(lengths[t], h.size(1)))
        return out

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L_k, F_k); lengths: (B,) or per modality -> ModelOutput."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        halves = self._length_halves(features, lengths)
        if halves is not None:
            return ModelOutput(self._predict_halves(features, lengths, halves))
        return ModelOutput(self._predict(features, lengths))

    #: in inference with one intra-op thread, a batch is run as two length-sorted halves (each
    #: cut to its longest sample) when that skips at least this share of the padded steps
    #: (False: never); with more threads the smaller products scaled worse and cost more
    split_padding_share: float | bool = 0.15

    def _length_halves(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> list[Tensor] | None:
        """Sample indices of the shorter and the longer half of the batch (by their longest
        modality) when running them apart saves :attr:`split_padding_share` of the steps."""
        if self.training or torch.is_grad_enabled() or not self.split_padding_share:
            return None
        if torch.get_num_threads() > 1:  # halves of the batch used two threads worse (12% slower)
            return None
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
            return None
        if has_forward_hooks(self):
            return None  # someone records submodules' outputs (latent probes): one call per batch
        b = next(iter(features.values())).size(0)
        if b < 8:
            return None
        longest = torch.stack([lengths[k] for k in self.modality_dims]).amax(dim=0)  # (B,)
        order = longest.argsort(stable=True)
        halves = [order[: b // 2], order[b // 2 :]]
        full = sum(b * x.size(1) for x in features.values())
        split = sum(
            len(h) * int(lengths[k][h].max()) for h in halves for k in self.modality_dims
        )
        return halves if split <= (1 - float(self.split_padding_share)) * full else None

    def _predict_halves(self, features: dict[str, Tensor], lengths: dict[str, Tensor], halves: list[Tensor]) -> Tensor:
        """:meth:`_predict` of each half (cut to its longest sample), back in batch order:
        every sample's prediction is what the whole batch gives it (padding never counts)."""
        out: Tensor | None = None
        for idx in halves:
            cut = {k: max(1, int(lengths[k][idx].max())) for k in self.modality_dims}
            pred = self._predict(
                {k: features[k][idx.to(features[k].device), : cut[k]] for k in self.modality_dims},
                {k: lengths[k][idx] for k in self.modality_dims},
            )
            if out is None:
                out = pred.new_empty(sum(len(h) for h in halves), pred.size(1))
            out[idx.to(pred.device)] = pred
        assert out is not None
        return out

    def _predict(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> Tensor:
        """(B, num_outputs) from checked inputs."""
        reps = self.encode(features, lengths)
        # Only each memory's last real step is read, so its last layer computes only that step.
        last = [self.memories[t](reps[t], lengths[t], last_only=True) for t in self.modality_dims]  # (B, (n-1) d)
        return self.head(torch.cat(last, dim=1))  # (B, n (n-1) d) -> (B, out)


#: MulT's training defaults: its public code's (Adam 1e-3, batch 24, gradient norm clipped to 0.8,
#: ReduceLROnPlateau factor 0.1 after 20 epochs without improvement, i.e. never within the
#: early stopping's 10). The generic ones (batch 32, lr 5e-4 halved after 2 epochs) leave it near
#: the constant predictor on planted cross-modal data; measured in docs/guide/fidelity.md
#: ("Training parity", MulT).
MULT_TRAINING = {"batch_size": 24, "lr": 1e-3, "grad_clip": 0.8, "lr_factor": 0.1, "lr_patience": 20}


@register_model(
    "mult",
    "MulT (Tsai et al. 2019), MOSEI settings: d 40, 4 layers, 8 heads; unaligned input allowed",
    training=MULT_TRAINING,
)
def mult(
    modality_dims: dict[str, int],
    *,
    hidden: int = 40,
    layers: int = 4,
    heads: int = 8,
    embed_dropout: float = 0.3,
    attn_dropout: float = 0.1,
    relu_dropout: float = 0.1,
    res_dropout: float = 0.1,
    out_dropout: float = 0.1,
    kernel_size: int = 1,
    causal: bool = False,
    kv_norm: str = "own",
    init: str = "torch",
    num_outputs: int = 1,
) -> MulT:
    """MulT; ``causal=True`` adds the future mask MulT's public code applies by a flag mistake.

    MulT with the given sizes; the self-attention stacks get max(layers, 3) layers (public code).
    ``kv_norm``: ``own`` (a crossmodal layer's source stream has its own LayerNorm) or
    ``shared`` (the target's LayerNorm normalises it too, as in the public code). ``init``:
    ``torch`` or ``xavier`` (the public code's: Xavier-uniform transformer weights, zero biases).
    """
    if heads < 1 or hidden % heads:
        raise ValueError(f"heads ({heads}) must divide hidden ({hidden})")
    names = list(modality_dims)
    drop = dict(
        attn_dropout=attn_dropout, relu_dropout=relu_dropout, res_dropout=res_dropout,
        embed_dropout=embed_dropout, causal=causal, init=init,
    )
    projections = nn.ModuleDict({k: TemporalProjection(f, hidden, kernel_size) for k, f in modality_dims.items()})
    encoders = nn.ModuleDict(
        {
            t: nn.ModuleDict(
                {s: TransformerEncoder(hidden, heads, layers, cross=True, kv_norm=kv_norm, **drop) for s in names if s != t}
            )
            for t in names
        }
    )
    width = (len(names) - 1) * hidden
    memories = nn.ModuleDict({t: TransformerEncoder(width, heads, max(layers, 3), **drop) for t in names})
    head = ResidualHead(len(names) * width, num_outputs, out_dropout)
    return MulT(projections, encoders, memories, head)


register_topdown(
    "mult-mmlatch",
    "mult",
    "MulT + MMLatch top-down feedback (LSTM generators read MulT's last crossmodal layer)",
)
