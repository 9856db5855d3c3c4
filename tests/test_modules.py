"""Building blocks checked against values worked out by hand on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmlatch.modules import (
    AttentionSum,
    CrossModalAttention,
    MaskedBiLSTM,
    SymmetricAttentionFusion,
    TopDown,
)
from mmlatch.modules.masking import length_mask, reversal_index
from mmlatch.modules.outputs import ModelOutput


def test_length_mask() -> None:
    mask = length_mask(torch.tensor([1, 3, 2]), 3)
    assert mask.tolist() == [[True, False, False], [True, True, True], [True, True, False]]


def test_reversal_index_keeps_padding_in_place() -> None:
    idx = reversal_index(torch.tensor([2, 4]), 4)
    x = torch.arange(8.0).view(2, 4)  # rows [0,1,2,3] and [4,5,6,7]
    assert x.gather(1, idx).tolist() == [[1.0, 0.0, 2.0, 3.0], [7.0, 6.0, 5.0, 4.0]]
    # reversing twice is the identity
    assert torch.equal(idx.gather(1, idx), torch.arange(4).expand(2, 4))


def test_bilstm_matches_unpadded_reference() -> None:
    torch.manual_seed(0)
    rnn = MaskedBiLSTM(3, 4, merge="concat")
    x = torch.randn(2, 5, 3)
    lengths = torch.tensor([3, 5])
    out = rnn(x, lengths)
    # sample 0 alone, truncated to its 3 real steps, through plain LSTMs
    x0 = x[:1, :3].transpose(0, 1)  # (3, 1, F): the LSTMs are time-major
    ref_f, _ = rnn.fwd(x0)
    ref_b, _ = rnn.bwd(x0.flip(0))
    ref = torch.cat([ref_f, ref_b.flip(0)], dim=-1).transpose(0, 1)
    assert torch.allclose(out[:1, :3], ref, atol=1e-6)


def test_bilstm_gradient_matches_finite_differences_under_padding() -> None:
    # the backward direction's gathers have the inverse gather as gradient: check it numerically
    torch.manual_seed(0)
    rnn = MaskedBiLSTM(3, 2).double()
    x = torch.randn(3, 4, 3, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([4, 2, 1])
    real = length_mask(lengths, 4).unsqueeze(2)
    assert torch.autograd.gradcheck(lambda t: rnn(t, lengths) * real, (x,))
    # and padded steps of the input get no gradient
    (rnn(x, lengths) * real).sum().backward()
    assert x.grad is not None and float(x.grad[1, 2:].abs().sum()) == 0.0


def test_attention_under_bf16_autocast_stays_close_and_float64_stays_exact() -> None:
    torch.manual_seed(0)
    att = CrossModalAttention(4, 4, 4, dropout=0.0, residual=False)
    q, k = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    ref = att(q, k, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = att(q, k, mask)
    assert out.dtype == torch.bfloat16
    # bfloat16 products, float32 softmax: within bfloat16's resolution of the float32 result
    assert torch.allclose(out.float(), ref, atol=3e-2)
    # float64 stays float64 throughout
    assert att.double()(q.double(), k.double(), mask).dtype == torch.float64


def test_cross_attention_by_hand() -> None:
    # identity projections, d = 2: scores = q.k / sqrt(2)
    att = CrossModalAttention(2, 2, 2, dropout=0.0, residual=True)
    for lin in (att.q, att.k, att.v):
        nn.init.eye_(lin.weight)
    q = torch.tensor([[[1.0, 0.0]]])  # (1, 1, 2)
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # third key is padding
    mask = torch.tensor([[True, True, False]])
    out = att(q, k, mask)
    s = 1 / math.sqrt(2)
    w1 = math.exp(s) / (math.exp(s) + 1.0)  # softmax over [s, 0]
    expected = torch.tensor([[[w1 + 1.0, 1 - w1]]])  # attention + residual query
    assert torch.allclose(out, expected, atol=1e-6)
    # padding content does not matter
    k2 = k.clone()
    k2[0, 2] = -100.0
    assert torch.allclose(att(q, k2, mask), out)


def test_attention_sum_by_hand_and_padding_never_counts() -> None:
    """The authors' read-out on a 2-step, 2-dim sequence with identity projections."""
    pool = AttentionSum(2, dropout=0.0)
    for lin in (pool.q, pool.k, pool.v):
        nn.init.eye_(lin.weight)
    x = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [50.0, -50.0]]])  # step 3 is padding
    out = pool(x, torch.tensor([[True, True, False]]))
    # scores = x x^T / sqrt(2): step 0 -> [4, 0] / sqrt 2, step 1 -> [0, 1] / sqrt 2
    w0 = 1 / (1 + math.exp(-4 / math.sqrt(2)))  # weight of step 0 for query step 0
    w1 = 1 / (1 + math.exp(-1 / math.sqrt(2)))  # weight of step 1 for query step 1
    step0 = [2 * w0, 1 - w0]
    step1 = [2 * (1 - w1), w1]
    expected = torch.tensor([[step0[0] + step1[0], step0[1] + step1[1]]])
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("names,blocks", [(["text", "audio"], 3), (["text", "audio", "visual"], 7), (["text", "a", "b", "c"], 13)])
def test_fusion_width(names: list[str], blocks: int) -> None:
    fusion = SymmetricAttentionFusion(names, 4, "text", attn_dropout=0.0)
    reps = {n: torch.randn(2, 3, 4) for n in names}
    masks = {n: torch.ones(2, 3, dtype=torch.bool) for n in names}
    assert fusion.output_dim == 4 * blocks
    assert fusion(reps, masks).shape == (2, 3, 4 * blocks)


class _ConstFeedback(nn.Module):
    def __init__(self, value: float, width: int) -> None:
        super().__init__()
        self.value, self.width = value, width
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, r: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.full((*r.shape[:2], self.width), self.value) + 0 * self.dummy


class _RecordingBackbone(nn.Module):
    """Encode = identity; forward records the inputs it sees and predicts their sum."""

    def __init__(self, dims: dict[str, int]) -> None:
        super().__init__()
        self.modality_dims = dims
        self.representation_dims = dims
        self.seen: dict[str, torch.Tensor] = {}

    def encode(self, features, lengths):
        return features

    def forward(self, features, lengths):
        self.seen = features
        return ModelOutput(sum(x.sum(dim=(1, 2)) for x in features.values()).unsqueeze(1))


@pytest.mark.parametrize("n_mod", [2, 3, 4])
def test_topdown_mask_is_mean_of_other_modalities(n_mod: int) -> None:
    names = ["m0", "m1", "m2", "m3"][:n_mod]
    dims = {n: 2 + i for i, n in enumerate(names)}
    values = {n: 0.1 * (i + 1) for i, n in enumerate(names)}  # generator j emits 0.1*(j+1)
    feedback = nn.ModuleDict(
        {f"{j}__{k}": _ConstFeedback(values[j], dims[k]) for k in names for j in names if j != k}
    )
    backbone = _RecordingBackbone(dims)
    model = TopDown(backbone, feedback)
    x = {n: torch.ones(1, 3, d) for n, d in dims.items()}
    lengths = torch.tensor([2])
    out = model(x, lengths)
    for k in names:
        expected = sum(values[j] for j in names if j != k) / (n_mod - 1)  # Eq. 4
        assert out.masks[k].shape == (1, 3, dims[k])
        assert torch.allclose(out.masks[k][0, :2], torch.full((2, dims[k]), expected))
        assert torch.all(out.masks[k][0, 2] == 0)  # padded step
        assert torch.allclose(backbone.seen[k][0, :2], torch.full((2, dims[k]), expected))


def test_topdown_rejects_one_modality_and_wrong_pairs() -> None:
    with pytest.raises(ValueError, match="at least 2 modalities"):
        TopDown(_RecordingBackbone({"a": 2}), nn.ModuleDict())
    with pytest.raises(ValueError, match="do not match pairs"):
        TopDown(_RecordingBackbone({"a": 2, "b": 2}), nn.ModuleDict({"a__b": _ConstFeedback(0.5, 2)}))


def test_lstm_feedback_gate_bias_opens_input_and_output_gates() -> None:
    from mmlatch.modules.feedback import build_feedback

    torch.manual_seed(0)
    plain = build_feedback("lstm", {"a": 6, "b": 6}, {"a": 4, "b": 3})
    torch.manual_seed(0)
    opened = build_feedback("lstm", {"a": 6, "b": 6}, {"a": 4, "b": 3}, gate_bias=2.0)
    diff = opened["a__b"].rnn.bias_ih_l0 - plain["a__b"].rnn.bias_ih_l0  # gates i, f, g, o of size 3
    assert torch.allclose(diff, torch.tensor([2.0] * 3 + [0.0] * 6 + [2.0] * 3))
    r = torch.randn(2, 5, 6)
    spread = lambda gen: gen["a__b"](r, torch.tensor([5, 5])).std().item()  # noqa: E731
    assert spread(opened) > spread(plain)  # masks vary more from the start
    with pytest.raises(ValueError, match="unknown feedback"):
        build_feedback("gru", {"a": 6, "b": 6}, {"a": 4, "b": 3})


def test_chunk_plan_by_hand() -> None:
    from mmlatch.modules.rnn import chunk_plan

    # lengths 4, 4, 2, 1: ends may fall at 1, 2 or 4; a chunk costs its steps x rows (+ costs)
    # one chunk 16; (0-1: 4 rows) + (1-2: 3) + (2-4: 2) = 4 + 3 + 4 = 11, the cheapest
    assert chunk_plan([4, 4, 2, 1], 4, 3, 0, 0) == [(0, 1, 4), (1, 2, 3), (2, 4, 2)]
    # a cost of 2 per chunk: 11 + 6 = 17 against (0-2: 4) + (2-4: 2) = 12 + 4 = 16
    assert chunk_plan([4, 4, 2, 1], 4, 3, 0, 2) == [(0, 2, 4), (2, 4, 2)]
    # one chunk allowed, or equal lengths: one pass over everything
    assert chunk_plan([4, 4, 2, 1], 4, 1, 0, 0) == [(0, 4, 4)]
    assert chunk_plan([3, 3], 5, 3, 0, 0) == [(0, 3, 2)]  # padding past the longest is never run
    with pytest.raises(ValueError, match="at least 1"):
        chunk_plan([3, 0], 3)


@pytest.mark.parametrize("costs", [(3, 0, 0), (3, 8, 200)])
def test_chunked_lstm_passes_equal_one_pass(monkeypatch: pytest.MonkeyPatch, costs: tuple[int, int, int]) -> None:
    from mmlatch.modules import LSTMFeedback, rnn

    monkeypatch.setattr(rnn, "MAX_CHUNKS", costs[0])
    monkeypatch.setattr(rnn, "STEP_COST", costs[1])
    monkeypatch.setattr(rnn, "CHUNK_COST", costs[2])
    torch.manual_seed(0)
    bi, fb = MaskedBiLSTM(3, 4).double(), LSTMFeedback(3, 2).double()
    lengths = torch.tensor([2, 7, 1, 5, 7, 3])
    x = torch.randn(6, 8, 3, dtype=torch.double, requires_grad=True)
    real = length_mask(lengths, 8).unsqueeze(2)
    params = [x, *bi.parameters(), *fb.parameters()]
    w = torch.randn(2, 6, 8, 4, dtype=torch.double)  # a different gradient at every step

    def run(chunked: bool) -> tuple[torch.Tensor, ...]:
        monkeypatch.setattr(rnn, "CHUNKED", chunked)
        f, b = bi.directions(x, lengths)
        m = fb(x, lengths)
        loss = (f * real).pow(2).sum() + (b * real * w[0]).sum() + (m * real * w[1, ..., :2]).sum()
        return (f * real, b * real, m * real, *torch.autograd.grad(loss, params))

    if costs[1] == 0:
        assert len(rnn.packed_steps(lengths, 8).plan) == 3  # 3 chunks were run
    chunked, whole = run(True), run(False)
    for a, b in zip(chunked, whole, strict=True):
        assert torch.allclose(a, b, atol=1e-12)
    # padded steps: zero output, no gradient to the input
    monkeypatch.setattr(rnn, "CHUNKED", True)
    assert float(bi(x, lengths).masked_select(~real).abs().sum()) == 0.0
    assert float(chunked[3].masked_select(~real).abs().sum()) == 0.0


def test_attention_regrouped_scores_equal_the_projected_ones() -> None:
    # scores (x W_q^T)(y W_k^T)^T computed as (x W_q^T W_k) y^T: the same values, float64
    torch.manual_seed(0)
    att = CrossModalAttention(3, 3, 4, dropout=0.0, residual=False).double()
    q, k = torch.randn(2, 4, 3, dtype=torch.double), torch.randn(2, 5, 3, dtype=torch.double)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    scores = att.q(q) @ att.k(k).transpose(1, 2) / 2.0  # sqrt(4)
    weights = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=-1)
    assert torch.allclose(att(q, k, mask), weights @ att.v(k), atol=1e-12)
