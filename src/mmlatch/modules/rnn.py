"""Recurrent layers that are exact under padding without packed sequences.

On CPU an LSTM pass over an end-padded batch runs in a few time chunks (:func:`lstm_packed`):
the sequences, longest first, are gathered into a packed layout where each chunk holds only
the sequences still running, so the kernels skip most of the padding while every chunk stays
on PyTorch's fast (oneDNN) LSTM path. On a batch of 32 with lengths 10-50 this cut MMLatch's
bfloat16 inference by 5-8% and its training step by about 5% (docs/guide/speed.md). Outputs at
padded steps are zero there (callers mask them anyway); values at real steps and every
gradient are those of one full pass (tests compare them in float64).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from mmlatch.modules.checks import is_exporting
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.masking import reversal_index


#: chunked LSTM passes on CPU (see :func:`use_chunks`); tests turn it off to compare
CHUNKED = True

#: most time chunks one LSTM pass is cut into, and the cost model that picks them: a step of
#: a chunk of n sequences costs STEP_COST + n row-steps, each chunk CHUNK_COST more
MAX_CHUNKS = 3
STEP_COST = 8
CHUNK_COST = 200


class _Gather(torch.autograd.Function):
    """Rows ``x[index]`` (``-1``: a zero row) whose gradient is the gather by ``inverse``
    (``-1``: no gradient), not the scatter-add a general gather's gradient needs: exact when
    every row of ``x`` is read at most once, by the row of the output that ``inverse`` names,
    and rows never read do not matter to the output (a permutation and its inverse, too)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, index: Tensor, zeros: Tensor, inverse: Tensor, inverse_zeros: Tensor) -> Tensor:
        ctx.save_for_backward(inverse, inverse_zeros)
        return x.index_select(0, index).index_fill_(0, zeros, 0.0)  # (len(index), F)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None, None]:
        inverse, inverse_zeros = ctx.saved_tensors
        return grad.index_select(0, inverse).index_fill_(0, inverse_zeros, 0.0), None, None, None, None


@dataclass(frozen=True)
class _Map:
    """One gather of :class:`_Gather`: the index (zero rows clamped to 0) and the rows to zero."""

    index: Tensor
    zeros: Tensor


def _gather(x: Tensor, there: _Map, back: _Map) -> Tensor:
    """x: (N, F) -> (len(there.index), F); ``back`` maps the result's rows back (the gradient).
    :class:`_Gather` where a gradient is needed, plain gathers otherwise (and when traced or
    exported, which cannot record a Python autograd function)."""
    if x.requires_grad and not is_exporting():
        return _Gather.apply(x, there.index, there.zeros, back.index, back.zeros)
    out = x.index_select(0, there.index)
    return out.index_fill_(0, there.zeros, 0.0) if there.zeros.numel() else out


def chunk_plan(
    lengths: list[int], steps: int, max_chunks: int = MAX_CHUNKS, step_cost: int = STEP_COST, chunk_cost: int = CHUNK_COST
) -> list[tuple[int, int, int]]:
    """Time chunks ``(start, end, rows)`` of an LSTM pass over sequences of ``lengths``
    sorted longest first: the chunk from ``start`` runs the ``rows`` sequences longer than
    ``start`` up to ``end``, so padding is run only inside chunks. At most ``max_chunks``,
    ends at distinct lengths, chosen to minimise the cost model (:data:`STEP_COST`,
    :data:`CHUNK_COST`)."""
    if min(lengths, default=0) < 1:
        raise ValueError(f"LSTM lengths must be at least 1, got {sorted(lengths)[:3]}...")
    top = min(max(lengths), steps)
    ends = sorted({min(n, top) for n in lengths} | {top})
    ascending = sorted(lengths)
    rows = {s: len(ascending) - bisect_right(ascending, s) for s in [0, *ends]}  # sequences longer than s
    best: dict[tuple[int, int], tuple[float, list[tuple[int, int, int]]]] = {}

    def cost(start: int, chunks: int) -> tuple[float, list[tuple[int, int, int]]]:
        if (start, chunks) in best:
            return best[(start, chunks)]
        options = []
        for end in ends:
            if end <= start or (chunks == 1 and end != top):
                continue
            here = (end - start) * (step_cost + rows[start]) + chunk_cost
            if end == top:
                options.append((here, [(start, end, rows[start])]))
            elif chunks > 1:
                rest, plan = cost(end, chunks - 1)
                options.append((here + rest, [(start, end, rows[start]), *plan]))
        best[(start, chunks)] = min(options, key=lambda o: o[0])
        return best[(start, chunks)]

    return cost(0, max_chunks)[1]


@dataclass(frozen=True)
class PackedSteps:
    """Where each real step of an end-padded batch goes in the chunked LSTM pass.

    The packed layout holds, chunk after chunk, ``(end - start) x rows`` time-major rows,
    the sequences longest first. For each direction ``d`` (``f``: as read, ``b``: reversed
    within each length), ``pack[d]`` gathers batch-major input rows (B*L) into the packed
    layout, and ``unpack[d]`` gathers packed outputs back to batch-major input-step rows;
    each is the other's inverse (their gradients).
    """

    plan: list[tuple[int, int, int]]
    pack: dict[str, _Map]
    unpack: dict[str, _Map]


def _map(index: np.ndarray) -> _Map:
    """:class:`_Map` of an index with ``-1`` for zero rows (built in numpy: tiny arrays)."""
    return _Map(torch.from_numpy(np.maximum(index, 0)), torch.from_numpy(np.flatnonzero(index < 0)))


@lru_cache(maxsize=16)
def _packed_steps(lengths: tuple[int, ...], steps: int, costs: tuple[int, int, int]) -> PackedSteps:
    # numpy, not torch: a few dozen operations on arrays of B x L, planned for every new batch
    lens = np.asarray(lengths, dtype=np.int64)
    batch = len(lengths)
    rank = np.empty(batch, dtype=np.int64)
    rank[np.argsort(-lens, kind="stable")] = np.arange(batch)
    plan = chunk_plan(sorted(lengths, reverse=True), steps, *costs)
    starts, ends, rows = (np.array(column, dtype=np.int64) for column in zip(*plan, strict=True))
    sizes = (ends - starts) * rows
    offsets = np.cumsum(sizes) - sizes
    t = np.arange(steps)
    chunk = np.minimum(np.searchsorted(ends, t, side="right"), len(plan) - 1)  # (L,)
    pos = offsets[chunk] + (t - starts[chunk]) * rows[chunk] + rank[:, None]  # (B, L) packed row of (b, t)
    real = t[None, :] < lens[:, None]  # (B, L)
    rev = np.where(real, lens[:, None] - 1 - t, t)  # (B, L): reversal within each length
    src = {"f": np.broadcast_to(t, (batch, steps)), "b": rev}  # input step read at packed step t
    sample = np.arange(batch)[:, None] * steps
    pack, unpack = {}, {}
    for d, step in src.items():
        into = np.full(int(sizes.sum()), -1, dtype=np.int64)
        into[pos[real]] = (sample + step)[real]
        pack[d] = _map(into)
        unpack[d] = _map(np.where(real, np.take_along_axis(pos, step, 1), -1).reshape(-1))
    return PackedSteps(plan, pack, unpack)


def packed_steps(lengths: Tensor, steps: int) -> PackedSteps:
    """The :class:`PackedSteps` of ``lengths`` (B,) padded to ``steps`` (cached; built as
    normal tensors even in inference mode, so that training may reuse them)."""
    with torch.inference_mode(False):
        return _packed_steps(tuple(lengths.tolist()), steps, (MAX_CHUNKS, STEP_COST, CHUNK_COST))


def forget_chunk_plans() -> None:
    """Empty the cache of :func:`packed_steps` (benchmarks: time a new batch's planning)."""
    _packed_steps.cache_clear()


def lstm_packed(lstm: nn.LSTM, x: Tensor, packed: PackedSteps, direction: str) -> Tensor:
    """x: (B, L, F) -> the outputs of ``lstm`` (B, L, H) at each input step of ``direction``
    (``f`` or ``b``), zero at padded steps; run chunk by chunk (``packed.plan``)."""
    batch, steps = x.size(0), x.size(1)
    rows = _gather(x.reshape(batch * steps, -1), packed.pack[direction], packed.unpack[direction])
    outs, state, at = [], None, 0
    for start, end, n in packed.plan:
        chunk = rows[at : at + (end - start) * n].view(end - start, n, -1)
        at += (end - start) * n
        if state is not None:
            state = (state[0][:, :n], state[1][:, :n])
        out, state = lstm(chunk, state)
        outs.append(out.reshape((end - start) * n, -1))
    flat = torch.cat(outs) if len(outs) > 1 else outs[0]
    return _gather(flat, packed.unpack[direction], packed.pack[direction]).view(batch, steps, -1)


def lower_precision(x: Tensor) -> Tensor:
    """``x`` as autocast would hand it to an LSTM (float32 -> the autocast type while autocast
    is on for its device), so that gathers move the narrower values."""
    kind = x.device.type
    if x.dtype == torch.float32 and torch.is_autocast_enabled(kind):
        return x.to(torch.get_autocast_dtype(kind))
    return x


def use_chunks(x: Tensor) -> bool:
    """Chunked LSTM passes: on CPU, outside tracing and export (their plan depends on the
    lengths, which a traced graph would freeze)."""
    return CHUNKED and x.device.type == "cpu" and not is_exporting() and not torch.jit.is_scripting()


class MaskedBiLSTM(nn.Module):
    """Bidirectional single-layer LSTM over end-padded batches.

    The backward direction runs over each sequence reversed within its own length, so
    padding never reaches a real step, and both directions stay on the fast unpacked path
    (one input-projection matmul for all steps); on CPU each direction runs in time chunks
    that skip most padding (:func:`lstm_packed`). Outputs at padded steps are arbitrary
    (zero on CPU); callers mask them.

    Args:
        input_size: F, the input feature size.
        hidden_size: H per direction.
        merge: ``sum`` (output H, as the paper's encoders) or ``concat`` (output 2H).
        dropout: dropout on each direction's outputs before they are merged (training only;
            the authors' code drops the LSTM outputs this way).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        merge: Literal["sum", "concat"] = "sum",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if merge not in ("sum", "concat"):
            raise ValueError(f"merge must be 'sum' or 'concat', got {merge!r}")
        self.fwd = nn.LSTM(input_size, hidden_size)  # time-major: the layout the LSTM kernels use
        self.bwd = nn.LSTM(input_size, hidden_size)
        self.merge = merge
        self.dropout = Dropout(dropout)
        self.output_size = hidden_size if merge == "sum" else 2 * hidden_size

    def directions(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, L, F), lengths: (B,) -> forward and backward outputs, each (B, L, H),
        both indexed by input step (the backward output at step 0 is its final state).

        The backward direction's input is gathered straight into time-major order, and its
        output straight back into batch-major input-step order: one copy each way. The two
        gathers are each other's inverse, so each one's gradient is the other gather
        (:class:`_Gather`). On CPU both directions go through :func:`lstm_packed` instead.
        """
        if use_chunks(x):
            x = lower_precision(x)
            packed = packed_steps(lengths, x.size(1))
            out_f, out_b = lstm_packed(self.fwd, x, packed, "f"), lstm_packed(self.bwd, x, packed, "b")
            return self.dropout(out_f), self.dropout(out_b)
        batch, steps = x.size(0), x.size(1)
        rev = reversal_index(lengths.to(x.device), steps)  # (B, L): step read at reversed step t
        rows = torch.arange(batch, device=x.device).unsqueeze(1)  # (B, 1)
        into = (rows * steps + rev).t().reshape(-1)  # time-major row t*B+b <- x[b, rev[b, t]]
        back = (rev * batch + rows).reshape(-1)  # batch-major row b*L+s <- out[rev[b, s], b]
        out_f, _ = self.fwd(x.transpose(0, 1))  # (L, B, H)
        none = into.new_empty(0)  # a permutation: no zero rows
        there, back_map = _Map(into, none), _Map(back, none)
        x_rev = _gather(x.reshape(batch * steps, -1), there, back_map).view(steps, batch, -1)
        out_b, _ = self.bwd(x_rev)  # (L, B, H), reversed steps
        out_b = _gather(out_b.reshape(steps * batch, -1), back_map, there).view(batch, steps, -1)
        return self.dropout(out_f.transpose(0, 1)), self.dropout(out_b)

    def _merge(self, a: Tensor, b: Tensor) -> Tensor:
        """a: forward outputs (B, L, H) (a time-major view on the single-pass path); b:
        backward outputs, contiguous.

        The sum reads ``b`` first so that it comes out batch-major and contiguous: ``a + b``
        would take ``a``'s time-major strides, and a linear layer on such a tensor cannot
        fold its batch into one matrix product (it broadcasts the weight to every sample and
        runs a batched product, which cost 8 of an inference step's 92 ms in MMLatch).
        """
        return b + a if self.merge == "sum" else torch.cat([a, b], dim=-1)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F), lengths: (B,) -> (B, L, H) (sum) or (B, L, 2H) (concat)."""
        return self._merge(*self.directions(x, lengths))

    def last_hidden(self, x: Tensor, lengths: Tensor) -> Tensor:
        """The final hidden states: forward at the last real step, backward at step 0.

        x: (B, L, F), lengths: (B,) -> (B, H) (sum) or (B, 2H) (concat).
        """
        out_f, out_b = self.directions(x, lengths)
        rows = torch.arange(x.size(0), device=x.device)
        return self._merge(out_f[rows, lengths.to(x.device) - 1], out_b[:, 0])
