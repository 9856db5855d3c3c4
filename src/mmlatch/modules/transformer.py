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

from mmlatch.modules.checks import has_forward_hooks, is_exporting
from mmlatch.modules.dropout import Dropout, dropout, keep_scale
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


def _split_heads(x: Tensor, parts: int, heads: int, length: int) -> Tensor:
    """(B, L, parts * d) (``parts`` projections side by side) -> (parts, B * H, length, d/H)
    contiguous, heads as batch entries; steps L..length-1 zero (length >= L)."""
    b, n, width = x.shape
    e = width // (parts * heads)
    split = x.view(b, n, parts, heads, e).permute(2, 0, 3, 1, 4)  # (parts, B, H, L, e)
    if length == n:
        return split.reshape(parts, b * heads, n, e)
    out = x.new_zeros(parts, b, heads, length, e)
    out[:, :, :, :n].copy_(split)
    return out.view(parts, b * heads, length, e)


def _join_heads(parts: list[Tensor], batch: int, length: int) -> Tensor:
    """``parts`` of (B * H, d/H, L' >= length) -> (B, length, len(parts) * d) contiguous: the
    inverse layout of :func:`_split_heads` (transposed), steps beyond ``length`` dropped."""
    n, e, _ = parts[0].shape
    heads = n // batch
    out = parts[0].new_empty(batch, length, len(parts), heads, e)
    for i, part in enumerate(parts):
        out[:, :, i].copy_(part.view(batch, heads, e, -1)[..., :length].permute(0, 3, 1, 2))
    return out.view(batch, length, -1)


class Packing:
    """The real steps of an end-padded batch as rows: (B, L, w) <-> (N, w), N = sum of lengths.

    Row-wise work (LayerNorms, projections, feed-forward, residual sums) on the N real rows
    only; attention takes the padded layout back (:meth:`unpack`, zeros at padding).

    Args:
        lengths: (B,) lengths in [1, L].
        length: L.
    """

    def __init__(self, lengths: Tensor, length: int) -> None:
        self.batch = lengths.numel()
        self.length = length
        self.rows = length_mask(lengths, length).reshape(-1).nonzero().squeeze(1)  # (N,) b * L + t
        self.last = lengths.cumsum(0) - 1  # (B,) each sample's last real step among the rows

    def pack(self, x: Tensor) -> Tensor:
        """(B, L, w) -> (N, w): the real steps, in batch then time order."""
        return x.reshape(-1, x.size(-1)).index_select(0, self.rows)

    def unpack(self, rows: Tensor) -> Tensor:
        """(N, w) -> (B, L, w), zero at padded steps."""
        out = rows.new_zeros(self.batch * self.length, rows.size(1))
        return out.index_copy_(0, self.rows, rows).view(self.batch, self.length, -1)


class _CpuAttention(torch.autograd.Function):
    """Multi-head ``softmax(q k^T * scale + mask) [dropout] v`` with every matrix product in
    the orientation that is fast on CPU at small head sizes.

    The weights P (B*H, Lq, Lk) are computed and masked as in the plain form (and dropped with
    :func:`dropout`'s draws); but ``P v``, ``P^T dOut`` and ``dS k`` have only d/H (5-12)
    output columns, a shape for which CPU BLAS was 3-4x slower than for the transposed
    products, so the output is computed as ``(v^T P^T)^T`` and the backward pass as
    ``dv^T = dOut^T P``, ``dq^T = k^T dS^T``, ``dk^T = q^T dS`` (the same sums). The key axis
    may be padded (the mask's length): padded keys are zero and masked, so they get exactly zero
    weight (bfloat16: the softmax over a multiple of the vector width was up to 1.8x faster). Autocast:
    the forward's state is restored for the backward (the same bfloat16 products).
    """

    @staticmethod
    def weights(q: Tensor, kv: Tensor | None, mask: Tensor, heads: int) -> tuple[Tensor, ...]:
        """:meth:`forward`'s inputs -> (qh, kh, vh (B*H, L, e), weights (B*H, Lq, Lk'), lk, scale)."""
        lk_pad = mask.size(-1)
        if kv is None:
            lq, width = q.shape[1:]
            d = width // 3
            qh = _split_heads(q[..., :d], 1, heads, lq)[0]
            kh, vh = _split_heads(q[..., d:], 2, heads, lk_pad)
            lk = lq
        else:
            lq, d = q.shape[1:]
            lk = kv.size(1)
            qh = _split_heads(q, 1, heads, lq)[0]  # (B*H, Lq, e)
            kh, vh = _split_heads(kv, 2, heads, lk_pad)  # (B*H, Lk', e)
        scale = (d // heads) ** -0.5
        weights = torch.softmax(torch.baddbmm(mask.to(qh.dtype), qh, kh.transpose(1, 2), alpha=scale), dim=-1)
        return qh, kh, vh, weights, lk, scale

    @staticmethod
    def infer(q: Tensor, kv: Tensor | None, mask: Tensor, heads: int) -> Tensor:
        """:meth:`forward` without dropout or autograd bookkeeping (inference) -> (B, Lq, d)."""
        _, _, vh, weights, _, _ = _CpuAttention.weights(q, kv, mask, heads)
        return _join_heads([torch.bmm(vh.transpose(1, 2), weights.transpose(1, 2))], q.size(0), q.size(1))

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, q: Tensor, kv: Tensor | None, mask: Tensor, heads: int, p: float) -> Tensor:  # type: ignore[override]
        """q: (B, Lq, d), kv: (B, Lk, 2d) keys | values; or q: (B, L, 3d) queries | keys | values
        and kv None (self-attention). mask: additive (B*H, Lq|1, Lk'), Lk' >= Lk, -inf beyond
        Lk. p: dropout on the weights (0: none) -> (B, Lq, d)."""
        b, lq = q.shape[:2]
        lk_pad = mask.size(-1)
        qh, kh, vh, weights, lk, scale = _CpuAttention.weights(q, kv, mask, heads)
        keep = None  # :func:`dropout`'s multiplier: the same draws, over the real keys
        if p >= 1:
            keep = torch.zeros_like(weights)
        elif p > 0:
            keep = keep_scale((*weights.shape[:2], lk), p, weights.dtype)
            if lk_pad > lk:
                keep = F.pad(keep, (0, lk_pad - lk))
        dropped = weights if keep is None else weights * keep  # (B*H, Lq, Lk')
        out_t = torch.bmm(vh.transpose(1, 2), dropped.transpose(1, 2))  # (B*H, e, Lq)
        ctx.save_for_backward(qh, kh, vh, weights, dropped, keep)
        ctx.scale, ctx.batch, ctx.lk, ctx.fused = scale, b, lk, kv is None
        return _join_heads([out_t], b, lq)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        qh, kh, vh, weights, dropped, keep = ctx.saved_tensors
        b, lq = ctx.batch, grad.size(1)
        g_t = _split_heads(grad, 1, qh.size(0) // b, lq)[0].transpose(1, 2)  # (B*H, e, Lq) view
        d_vt = torch.bmm(g_t, dropped)  # (B*H, e, Lk')
        d_weights = torch.bmm(g_t.transpose(1, 2), vh.transpose(1, 2))  # (B*H, Lq, Lk')
        if keep is not None:
            d_weights = d_weights * keep
        d_scores = torch._softmax_backward_data(d_weights.to(weights.dtype), weights, -1, weights.dtype)
        d_qt = torch.bmm(kh.transpose(1, 2), d_scores.transpose(1, 2)).mul_(ctx.scale)  # (B*H, e, Lq)
        d_kt = torch.bmm(qh.transpose(1, 2), d_scores).mul_(ctx.scale)  # (B*H, e, Lk')
        if ctx.fused:
            return _join_heads([d_qt, d_kt, d_vt], b, lq), None, None, None, None
        return _join_heads([d_qt], b, lq), _join_heads([d_kt, d_vt], b, ctx.lk), None, None, None


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention of a query sequence over a key/value sequence.

    Args:
        dim: d, query/key/value/output size; must be divisible by ``heads``.
        heads: number of heads.
        dropout: dropout on the attention weights (training only).
    """

    #: on CPU, the products in their fast orientation (:class:`_CpuAttention`); False: the
    #: plain products everywhere (the reference the tests compare it with)
    cpu_products: bool = True

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

    def per_head_mask(self, attn_mask: Tensor, keys_multiple: int = 1, dtype: torch.dtype | None = None) -> Tensor:
        """A (B, 1, Lq|1, Lk) mask (bool, or additive floats) as the additive (B * H, Lq|1, Lk')
        form :meth:`forward` adds to the scores; a stack computes it once for all its layers.
        ``keys_multiple``: Lk' is Lk rounded up to it, the added keys masked (-inf); ``dtype``:
        of the result (default: the mask's float type, or torch's default for a bool mask)."""
        if attn_mask.dtype == torch.bool:
            attn_mask = additive_mask(attn_mask, dtype or torch.get_default_dtype())
        elif dtype is not None:
            attn_mask = attn_mask.to(dtype)
        b, _, lq, lk = attn_mask.shape
        pad = -lk % keys_multiple
        if pad:
            attn_mask = F.pad(attn_mask, (0, pad), value=float("-inf"))
        return attn_mask.expand(b, self.heads, lq, lk + pad).reshape(b * self.heads, lq, lk + pad)

    def uses_cpu_products(self, x: Tensor) -> bool:
        """Whether :meth:`forward` takes :class:`_CpuAttention`'s path for inputs like ``x``
        (not while traced or exported: TorchScript and ONNX get the plain products)."""
        exporting = torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()
        return x.device.type == "cpu" and self.cpu_products and not exporting

    def mask_layout(self, x: Tensor) -> tuple[int, torch.dtype]:
        """(keys_multiple, dtype) of :meth:`per_head_mask` that suit :meth:`forward` on ``x``
        here: on CPU under bfloat16 autocast the key axis padded to a multiple of 32 (the
        softmax over a multiple of the vector width was up to 1.8x faster; in float32 the
        padding cost more than it saved), the dtype the scores will have."""
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
        else:
            dtype = x.dtype
        if not self.uses_cpu_products(x):
            return 1, dtype
        return (32 if dtype in (torch.bfloat16, torch.float16) else 1), dtype

    def joint(self, *names: str) -> tuple[Tensor, Tensor]:
        """The named projections (``"q"``, ``"k"``, ``"v"``) as one: weight (n d, d), bias (n d,)."""
        lins = [getattr(self, n) for n in names]
        return torch.cat([lin.weight for lin in lins]), torch.cat([lin.bias for lin in lins])

    def _project(self, query: Tensor, kv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v (each (B, L, d)); one matrix product for q, k, v when ``kv is query``
        (self-attention) and one for k, v otherwise (the same weights, concatenated)."""
        if kv is query:
            return F.linear(query, *self.joint("q", "k", "v")).chunk(3, dim=-1)
        k, v = F.linear(kv, *self.joint("k", "v")).chunk(2, dim=-1)
        return self.q(query), k, v

    def _project_fused(self, query: Tensor, kv: Tensor) -> tuple[Tensor, Tensor | None]:
        """:meth:`_project`'s products unsplit: (q | k | v (B, L, 3d), None) for self-attention,
        (q (B, Lq, d), k | v (B, Lk, 2d)) otherwise."""
        if kv is query:
            return F.linear(query, *self.joint("q", "k", "v")), None
        return self.q(query), F.linear(kv, *self.joint("k", "v"))

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
            attn_mask = self.per_head_mask(attn_mask, *self.mask_layout(query))
        if self.uses_cpu_products(query):
            pad = -kv.size(1) % self.mask_layout(query)[0]
            if attn_mask.size(-1) < kv.size(1) + pad:  # a caller's mask without the padding
                attn_mask = F.pad(attn_mask, (0, kv.size(1) + pad - attn_mask.size(-1)), value=float("-inf"))
            p = self.dropout if self.training else 0.0
            return self.out(_CpuAttention.apply(*self._project_fused(query, kv), attn_mask, self.heads, p))
        attn_mask = attn_mask[..., : kv.size(1)]  # a mask padded for the CPU path
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

    def forward_rows(
        self, x: Tensor, attn_mask: Tensor, rows: Packing, kv: Tensor | None = None,
        kv_rows: Packing | None = None, last: bool = False,
    ) -> Tensor:
        """:meth:`forward` in inference on the real steps only (CPU products path): x (N, d)
        the rows of ``rows``; kv (Nk, d) those of ``kv_rows`` if cross; attn_mask the
        per-head (B*H, Lq|1, Lk') -> (N, d). Row-wise work (LayerNorms, projections,
        feed-forward) skips the padding; attention runs on the padded layout (zero keys at
        padded steps, masked). ``last``: only each sample's last real step -> (B, d)
        (attn_mask with one query row)."""
        attn = self.attn
        normed = self.norm_q(x)
        if kv is None:
            if last:
                q = attn.q(normed.index_select(0, rows.last)).unsqueeze(1)  # (B, 1, d)
                out = _CpuAttention.infer(q, rows.unpack(F.linear(normed, *attn.joint("k", "v"))), attn_mask, attn.heads)
            else:
                out = _CpuAttention.infer(rows.unpack(F.linear(normed, *attn.joint("q", "k", "v"))), None, attn_mask, attn.heads)
        else:
            assert kv_rows is not None
            source = self.norm_q(kv) if self.norm_kv is None else self.norm_kv(kv)
            keys = kv_rows.unpack(F.linear(source, *attn.joint("k", "v")))  # (B, Lk, 2d)
            q = attn.q(normed.index_select(0, rows.last)).unsqueeze(1) if last else rows.unpack(attn.q(normed))
            out = _CpuAttention.infer(q, keys, attn_mask, attn.heads)
        if last:
            x = x.index_select(0, rows.last) + attn.out(out.squeeze(1))  # (B, d)
        else:
            x = x + attn.out(rows.pack(out))  # (N, d)
        return x + self.fc2(F.relu(self.fc1(self.norm_ff(x))))


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
        attn = self.layers[0].attn
        keys_multiple, dtype = attn.mask_layout(x)
        mask = additive_mask(mask, dtype)  # (B, 1, Lq|1, Lk)
        per_head = attn.per_head_mask(mask, keys_multiple)  # once for every layer
        if self._packs(x, lengths, kv, kv_lengths):
            return self._forward_rows(x, lengths, kv, kv_lengths, mask, per_head, last_only)
        if not last_only:
            for layer in self.layers:
                x = layer(x, per_head, kv)
            return self.norm(x)
        for layer in self.layers[:-1]:
            x = layer(x, per_head, kv)
        idx = (lengths.to(x.device) - 1).clamp(min=0)  # (B,)
        mask = _last_query_rows(mask, idx)
        return self.norm(self.layers[-1](x, mask, kv, query_index=idx).squeeze(1))  # (B, d)

    #: in inference on the CPU products path, the row-wise work of each layer runs on the real
    #: steps only (:meth:`TransformerLayer.forward_rows`) when at least this share of the
    #: batch's steps (queries and keys together) is padding (False: never)
    pack_padding_share: float | bool = 0.1

    def _packs(self, x: Tensor, lengths: Tensor, kv: Tensor | None, kv_lengths: Tensor | None) -> bool:
        """Whether :meth:`forward` takes the packed-rows path for these inputs."""
        if self.training or torch.is_grad_enabled() or not self.pack_padding_share:
            return False
        if not self.layers[0].attn.uses_cpu_products(x) or is_exporting():
            return False
        if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
            return False
        if has_forward_hooks(self.layers):
            return False  # someone records a layer's (padded) outputs
        steps, real = x.size(0) * x.size(1), int(lengths.sum())
        if kv is not None and kv_lengths is not None:
            steps, real = steps + kv.size(0) * kv.size(1), real + int(kv_lengths.sum())
        return real <= (1 - float(self.pack_padding_share)) * steps

    def _forward_rows(
        self, x: Tensor, lengths: Tensor, kv: Tensor | None, kv_lengths: Tensor | None,
        mask: Tensor, per_head: Tensor, last_only: bool,
    ) -> Tensor:
        """:meth:`forward` (after the embedding) with every layer on the real steps as rows:
        the same values at real steps; zero at padded steps."""
        rows, kv_rows, source = Packing(lengths.to(x.device), x.size(1)), None, None
        if kv is not None:
            assert kv_lengths is not None  # forward checked it
            kv_rows = Packing(kv_lengths.to(x.device), kv.size(1))
            source = kv_rows.pack(kv)
        h = rows.pack(x)
        if not last_only:
            for layer in self.layers:
                h = layer.forward_rows(h, per_head, rows, source, kv_rows)
            return rows.unpack(self.norm(h))
        for layer in self.layers[:-1]:
            h = layer.forward_rows(h, per_head, rows, source, kv_rows)
        if mask.size(2) > 1:  # causal: one query row per sample now
            attn = self.layers[-1].attn
            per_head = attn.per_head_mask(_last_query_rows(mask, lengths.to(x.device) - 1), attn.mask_layout(x)[0])
        return self.norm(self.layers[-1].forward_rows(h, per_head, rows, source, kv_rows, last=True))  # (B, d)


def _last_query_rows(mask: Tensor, idx: Tensor) -> Tensor:
    """A stack's (B, 1, Lq|1, Lk) mask for the query at step ``idx[b]`` of each sample only:
    (B, 1, 1, Lk) (a causal mask's row ``idx[b]``; a mask of one row as it is)."""
    if mask.size(2) == 1:
        return mask
    return mask[torch.arange(mask.size(0), device=mask.device), :, idx].unsqueeze(2)


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
