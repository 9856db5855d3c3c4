"""Transformer blocks shared by MulT and HCT-MG: positions, (crossmodal) encoder layers, stacks.

Every block masks padding: a padded key step never gets attention weight, so the outputs at
real query steps do not depend on what the padding holds or how long it is. Outputs at padded
query steps are finite but meaningless.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlatch.modules.dropout import Dropout, dropout
from mmlatch.modules.masking import additive_mask, length_mask


#: how a crossmodal layer normalises its key/value stream (:class:`TransformerLayer`)
KV_NORMS = ("own", "shared")
#: weight initialisations of a stack (:meth:`TransformerEncoder.reset_parameters`)
INITS = ("torch", "xavier")


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """MulT's (fairseq's) sinusoidal table: positions 1..L, sines then cosines.

    Args:
        length: L, number of steps.
        dim: d, embedding size (an odd d gets a zero last column).
    Returns:
        (L, d) float32 table.
    """
    half = dim // 2
    scale = math.log(10000.0) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=device) * -scale)  # (d/2,)
    pos = torch.arange(1, length + 1, dtype=torch.float32, device=device)  # (L,)
    angles = pos.unsqueeze(1) * freqs.unsqueeze(0)  # (L, d/2)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (L, 2 * (d/2))
    if dim % 2:
        table = F.pad(table, (0, 1))
    return table


class ScaledPositionalEmbedding(nn.Module):
    """``dropout(sqrt(d) * x + positions)``, MulT's input embedding of every transformer.

    The positions depend on the step index only (not on the padding), so end padding never
    changes a real step's embedding.

    Args:
        dim: d.
        dropout: embedding dropout (training only).
    """

    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.scale = math.sqrt(dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, d) -> (B, L, d)."""
        pos = sinusoidal_positions(x.size(1), self.dim, x.device).to(x.dtype)  # (L, d)
        return self.dropout(self.scale * x + pos)


class TemporalProjection(nn.Module):
    """Bias-free Conv1d over time from F input features to d (MulT's input projection).

    Steps beyond each sample's length are zeroed BEFORE the convolution, and the convolution
    pads with zeros ("same" padding, odd kernel), so with any kernel size a real step near the
    end sees the same zeros whether the batch is padded or not: padding never leaks.

    Args:
        input_dim: F.
        dim: d.
        kernel_size: odd temporal kernel (MulT's public code: 1).
    """

    def __init__(self, input_dim: int, dim: int, kernel_size: int = 1) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1 (keeps one output per step), got {kernel_size}")
        self.input_dim = input_dim
        self.output_dim = dim
        self.conv = nn.Conv1d(input_dim, dim, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F), lengths: (B,) -> (B, L, d)."""
        mask = length_mask(lengths, x.size(1))  # (B, L)
        x = x.masked_fill(~mask.unsqueeze(2), 0.0)
        return self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, F, L) -> (B, d, L) -> (B, L, d)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention of a query sequence over a key/value sequence.

    Args:
        dim: d, query/key/value/output size; must be divisible by ``heads``.
        heads: number of heads.
        dropout: dropout on the attention weights (training only).
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"attention size {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.dropout = dropout
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        """(B, L, d) -> (B * H, L, d/H), heads as batch entries."""
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2).reshape(b * self.heads, n, d // self.heads)

    def per_head_mask(self, attn_mask: Tensor) -> Tensor:
        """A (B, 1, Lq|1, Lk) mask (bool, or additive floats) as the additive (B * H, Lq|1, Lk)
        form :meth:`forward` adds to the scores; a stack computes it once for all its layers."""
        if attn_mask.dtype == torch.bool:
            attn_mask = additive_mask(attn_mask, torch.get_default_dtype())
        b, _, lq, lk = attn_mask.shape
        return attn_mask.expand(b, self.heads, lq, lk).reshape(b * self.heads, lq, lk)

    def _project(self, query: Tensor, kv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v (each (B, L, d)); one matrix product for q, k, v when ``kv is query``
        (self-attention) and one for k, v otherwise (the same weights, concatenated)."""
        if kv is query:
            w = torch.cat([self.q.weight, self.k.weight, self.v.weight])  # (3d, d)
            b = torch.cat([self.q.bias, self.k.bias, self.v.bias])
            return F.linear(query, w, b).chunk(3, dim=-1)
        k, v = F.linear(kv, torch.cat([self.k.weight, self.v.weight]), torch.cat([self.k.bias, self.v.bias])).chunk(2, dim=-1)
        return self.q(query), k, v

    def forward(self, query: Tensor, kv: Tensor, attn_mask: Tensor) -> Tensor:
        """query: (B, Lq, d), kv: (B, Lk, d), attn_mask (B, 1, Lq|1, Lk): bool, True where a
        query step may attend a key step, or the same as floats added to the scores
        (:func:`additive_mask`), or :meth:`per_head_mask`'s (B * H, Lq|1, Lk) -> (B, Lq, d).

        ``softmax(q k^T / sqrt(d/H) + mask)`` by explicit products, :func:`dropout` on the
        weights in training: the same mathematics as ``F.scaled_dot_product_attention``,
        which on CPU was several times slower at MulT's sizes (head size 6-12, 50 steps) in
        inference and in training.
        """
        b, lq, d = query.shape
        if attn_mask.dim() == 4:
            attn_mask = self.per_head_mask(attn_mask)
        q, k, v = (self._split(t) for t in self._project(query, kv))  # (B * H, L, d/H)
        # the mask is added inside the product (one pass over the scores instead of two)
        scores = torch.baddbmm(attn_mask.to(q.dtype), q, k.transpose(1, 2), alpha=(d // self.heads) ** -0.5)
        out = dropout(torch.softmax(scores, dim=-1), self.dropout, self.training) @ v  # (B * H, Lq, d/H)
        return self.out(out.view(b, self.heads, lq, -1).transpose(1, 2).reshape(b, lq, d))


class TransformerLayer(nn.Module):
    """Pre-LayerNorm transformer encoder layer; crossmodal when given a key/value stream.

    ``x = x + drop(attn(LN(x), LN_kv(kv)))``; ``x = x + drop(W2 drop(relu(W1 LN(x))))`` with
    a feed-forward width of 4d (MulT's layer). A self-attention layer (``cross=False``) attends
    its own normalised input and has no ``LN_kv``.

    Args:
        dim: d.
        heads: attention heads (must divide d).
        attn_dropout: dropout on attention weights.
        relu_dropout: dropout after the feed-forward ReLU.
        res_dropout: dropout on each branch before its residual sum.
        cross: the layer attends a separate key/value stream.
        kv_norm: ``own`` (the key/value stream has its own LayerNorm) or ``shared`` (the
            query's LayerNorm normalises it too, as in MulT's public code); cross only.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        cross: bool = False,
        kv_norm: str = "own",
    ) -> None:
        super().__init__()
        if kv_norm not in KV_NORMS:
            raise ValueError(f"kv_norm must be one of {', '.join(KV_NORMS)}; got {kv_norm!r}")
        self.cross = cross
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross and kv_norm == "own" else None
        self.attn = MultiHeadAttention(dim, heads, attn_dropout)
        self.norm_ff = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.relu_dropout = Dropout(relu_dropout)
        self.res_dropout = Dropout(res_dropout)

    def forward(
        self, x: Tensor, attn_mask: Tensor, kv: Tensor | None = None, query_index: Tensor | None = None
    ) -> Tensor:
        """x: (B, Lq, d), attn_mask: (B, 1, Lq|1, Lk) bool or additive (see
        :meth:`MultiHeadAttention.forward`), kv: (B, Lk, d) if cross -> (B, Lq, d).

        ``query_index`` (B,): compute the layer's output only at step ``query_index[b]`` of
        each sample (keys and values still come from every step) -> (B, 1, d); attn_mask
        must then have one query row. Every step's output depends only on its own query row,
        so these are exactly the full output's values at those steps.
        """
        if (kv is not None) != self.cross:
            raise ValueError("a crossmodal layer needs kv; a self-attention layer takes none")
        normed = self.norm_q(x)
        if kv is None:
            source = normed
        else:
            source = self.norm_q(kv) if self.norm_kv is None else self.norm_kv(kv)
        q = normed
        if query_index is not None:
            rows = torch.arange(x.size(0), device=x.device)
            x, q = x[rows, query_index].unsqueeze(1), normed[rows, query_index].unsqueeze(1)  # (B, 1, d)
        x = x + self.res_dropout(self.attn(q, source, attn_mask))
        h = self.fc2(self.relu_dropout(F.relu(self.fc1(self.norm_ff(x)))))
        return x + self.res_dropout(h)


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerLayer` with key-padding masks and a final LayerNorm.

    Self-attention (``cross=False``): ``forward(x, lengths)``. Crossmodal (``cross=True``):
    ``forward(x, lengths, kv, kv_lengths)``, x is the target (query) stream, kv the source.
    With ``embed=True`` both streams first go through :class:`ScaledPositionalEmbedding`
    (``sqrt(d) * x + positions``, embedding dropout), as in every MulT transformer.

    Args:
        dim: d.
        heads: attention heads (must divide d).
        layers: number of layers.
        attn_dropout, relu_dropout, res_dropout: see :class:`TransformerLayer`.
        embed_dropout: dropout after the positional embedding.
        cross: crossmodal stack.
        causal: a query step i attends key steps j <= i only (by absolute index; with
            unaligned streams of different lengths, the first i+1 source steps). Step 0 is
            always visible, so no real query row is ever fully masked.
        embed: apply the scaled positional embedding first.
        kv_norm: see :class:`TransformerLayer`.
        init: ``torch`` (PyTorch's defaults) or ``xavier`` (MulT's public code: Xavier-uniform
            attention and feed-forward weights, the joint (3d, d) query/key/value matrix as
            one, zero biases).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        layers: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        embed_dropout: float = 0.0,
        cross: bool = False,
        causal: bool = False,
        embed: bool = True,
        kv_norm: str = "own",
        init: str = "torch",
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"a transformer needs at least 1 layer, got {layers}")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
        self.dim = dim
        self.cross = cross
        self.causal = causal
        self.embed = ScaledPositionalEmbedding(dim, embed_dropout) if embed else None
        self.layers = nn.ModuleList(
            TransformerLayer(dim, heads, attn_dropout, relu_dropout, res_dropout, cross, kv_norm) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        if init == "xavier":
            self.reset_parameters_xavier()

    @torch.no_grad()
    def reset_parameters_xavier(self) -> None:
        """MulT's public initialisation: Xavier-uniform weights (q, k, v drawn as one (3d, d)
        matrix), zero biases; LayerNorms stay at 1 / 0."""
        for layer in self.layers:
            attn = layer.attn
            qkv = torch.empty(3 * self.dim, self.dim)
            nn.init.xavier_uniform_(qkv)
            for lin, w in zip((attn.q, attn.k, attn.v), qkv.chunk(3)):
                lin.weight.copy_(w)
            for lin in (attn.out, layer.fc1, layer.fc2):
                nn.init.xavier_uniform_(lin.weight)
            for lin in (attn.q, attn.k, attn.v, attn.out, layer.fc1, layer.fc2):
                nn.init.zeros_(lin.bias)

    def attention_mask(self, lq: int, kv_lengths: Tensor, lk: int) -> Tensor:
        """Bool (B, 1, Lq|1, Lk): True where a query step may attend a key step."""
        mask = length_mask(kv_lengths, lk)[:, None, None, :]  # (B, 1, 1, Lk) key padding
        if self.causal:
            steps_q = torch.arange(lq, device=kv_lengths.device).unsqueeze(1)  # (Lq, 1)
            steps_k = torch.arange(lk, device=kv_lengths.device).unsqueeze(0)  # (1, Lk)
            mask = mask & (steps_k <= steps_q)  # (B, 1, Lq, Lk)
        return mask

    def forward(
        self,
        x: Tensor,
        lengths: Tensor,
        kv: Tensor | None = None,
        kv_lengths: Tensor | None = None,
        last_only: bool = False,
    ) -> Tensor:
        """x: (B, Lq, d), lengths: (B,); kv: (B, Lk, d), kv_lengths: (B,) if cross -> (B, Lq, d).

        ``last_only``: only the output at each sample's last real step, (B, d), equal to
        ``last_real_step(forward(...), lengths)``; the last layer then computes that one
        step (its attention, feed-forward and the final LayerNorm) instead of all of them.
        """
        if self.cross and (kv is None or kv_lengths is None):
            raise ValueError("a crossmodal transformer needs kv and kv_lengths")
        if not self.cross and kv is not None:
            raise ValueError("a self-attention transformer takes no kv")
        if self.embed is not None:
            x = self.embed(x)
            kv = self.embed(kv) if kv is not None else None
        if kv is None:
            mask = self.attention_mask(x.size(1), lengths, x.size(1))
        else:
            mask = self.attention_mask(x.size(1), kv_lengths, kv.size(1))
        mask = additive_mask(mask, x.dtype)  # (B, 1, Lq|1, Lk)
        per_head = self.layers[0].attn.per_head_mask(mask)  # once for every layer
        if not last_only:
            for layer in self.layers:
                x = layer(x, per_head, kv)
            return self.norm(x)
        for layer in self.layers[:-1]:
            x = layer(x, per_head, kv)
        idx = (lengths.to(x.device) - 1).clamp(min=0)  # (B,)
        if mask.size(2) > 1:  # causal: the query row of each sample's last step
            mask = mask[torch.arange(x.size(0), device=x.device), :, idx].unsqueeze(2)  # (B, 1, 1, Lk)
        return self.norm(self.layers[-1](x, mask, kv, query_index=idx).squeeze(1))  # (B, d)


def last_real_step(x: Tensor, lengths: Tensor) -> Tensor:
    """The step at index ``length - 1`` of each sample (not index -1, which may be padding).

    Args:
        x: (B, L, D) end-padded sequences.
        lengths: (B,) lengths in [1, L].
    Returns:
        (B, D).
    """
    idx = (lengths.to(x.device) - 1).clamp(min=0)  # (B,)
    return x[torch.arange(x.size(0), device=x.device), idx]


def masked_mean(x: Tensor, lengths: Tensor) -> Tensor:
    """Mean over each sample's real steps: (B, L, D), (B,) -> (B, D)."""
    mask = length_mask(lengths.to(x.device), x.size(1)).unsqueeze(2)  # (B, L, 1)
    total = x.masked_fill(~mask, 0.0).sum(dim=1)  # (B, D); masked_fill, so padding can't leak
    return total / mask.sum(dim=1).clamp(min=1).to(x.dtype)


class TransformerSequenceEncoder(nn.Module):
    """A unimodal encoder: :class:`TemporalProjection` to d, then a self-attention stack.

    Args:
        input_dim: F, the modality's feature size.
        dim: d.
        heads, layers, attn_dropout, relu_dropout, res_dropout, embed_dropout, causal: see
            :class:`TransformerEncoder`.
        kernel_size: odd temporal kernel of the projection.
    """

    def __init__(
        self,
        input_dim: int,
        dim: int,
        heads: int,
        layers: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        embed_dropout: float = 0.0,
        kernel_size: int = 1,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = dim
        self.projection = TemporalProjection(input_dim, dim, kernel_size)
        self.transformer = TransformerEncoder(
            dim, heads, layers, attn_dropout, relu_dropout, res_dropout, embed_dropout, causal=causal
        )

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F), lengths: (B,) -> (B, L, d), zero at padded steps."""
        h = self.transformer(self.projection(x, lengths), lengths)
        return h.masked_fill(~length_mask(lengths, h.size(1)).unsqueeze(2), 0.0)
