"""MulT and the shared transformer blocks: masking mechanics, unaligned input, MMLatch masks."""

from __future__ import annotations

import math

import pytest
import torch

from mmlatch.models import create_model
from mmlatch.models.mult import MulT
from mmlatch.modules import TopDown
from mmlatch.modules.transformer import (
    ScaledPositionalEmbedding,
    TemporalProjection,
    TransformerEncoder,
    TransformerLayer,
    last_real_step,
    sinusoidal_positions,
)

from padded import padded_modalities

D = 8
DIMS = {"text": 6, "audio": 5, "visual": 4}


def _feats(lengths: dict[str, list[int]], dims: dict[str, int] = DIMS, seed: int = 0):
    return padded_modalities(lengths, dims, seed)


def _mult(dims: dict[str, int] = DIMS, name: str = "mult", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, dims, hidden=D, layers=2, heads=2, **kw)


def _cross(causal: bool = False) -> TransformerEncoder:
    torch.manual_seed(0)
    return TransformerEncoder(D, 2, 2, attn_dropout=0.1, relu_dropout=0.1, res_dropout=0.1, cross=True, causal=causal).eval()


def test_crossmodal_attention_ignores_padded_key_steps() -> None:
    enc = _cross()
    g = torch.Generator().manual_seed(0)
    x, kv = torch.randn(2, 5, D, generator=g), torch.randn(2, 7, D, generator=g)
    lens, kv_lens = torch.tensor([5, 4]), torch.tensor([7, 3])
    garbage = kv.clone()
    garbage[1, 3:] = 1e3 * torch.randn(4, D, generator=g)
    with torch.no_grad():
        out = enc(x, lens, kv, kv_lens)
        out_garbage = enc(x, lens, garbage, kv_lens)
        alone = enc(x[1:], lens[1:], kv[1:, :3], kv_lens[1:])  # no key padding at all
        changed_real = kv.clone()
        changed_real[1, 2] = torch.randn(D, generator=g)
        out_real = enc(x, lens, changed_real, kv_lens)
    assert torch.allclose(out, out_garbage, atol=1e-6)
    assert torch.allclose(out[1], alone[0], atol=1e-5)
    assert torch.isfinite(out).all()
    # control: a real key step does change the outputs, so the check above is not vacuous
    assert not torch.allclose(out[1], out_real[1], atol=1e-4)
    assert torch.equal(out[0], out_real[0])


def test_causal_mask_hides_future_key_steps() -> None:
    enc = _cross(causal=True)
    g = torch.Generator().manual_seed(1)
    x, kv = torch.randn(1, 6, D, generator=g), torch.randn(1, 6, D, generator=g)
    lens = torch.tensor([6])
    later = kv.clone()
    later[0, 4:] = torch.randn(2, D, generator=g)
    with torch.no_grad():
        a, b = enc(x, lens, kv, lens), enc(x, lens, later, lens)
    assert torch.allclose(a[0, :4], b[0, :4], atol=1e-6)  # steps 0..3 never see steps 4, 5
    assert not torch.allclose(a[0, 4:], b[0, 4:], atol=1e-4)


def test_mult_has_no_causal_mask_by_default_and_offers_one() -> None:
    stacks = lambda m: [s for t in m.encoders.values() for s in t.values()] + list(m.memories.values())  # noqa: E731
    assert not any(s.causal for s in stacks(_mult()))
    assert all(s.causal for s in stacks(_mult(causal=True)))


def test_scaled_positional_embedding_by_hand() -> None:
    table = sinusoidal_positions(3, 4)
    # d = 4: frequencies 1 and 1e-4 (log(1e4) / (d/2 - 1) = log(1e4)); positions start at 1
    expected_row0 = torch.tensor([math.sin(1.0), math.sin(1e-4), math.cos(1.0), math.cos(1e-4)])
    assert torch.allclose(table[0], expected_row0, atol=1e-6)
    x = torch.randn(2, 3, 4)
    assert torch.allclose(ScaledPositionalEmbedding(4)(x), 2.0 * x + table, atol=1e-6)


def test_last_real_step_uses_lengths_not_the_last_index() -> None:
    x = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1)  # values = flat index
    assert last_real_step(x, torch.tensor([2, 4])).flatten().tolist() == [1.0, 7.0]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("cross", [False, True])
def test_last_only_equals_the_full_output_at_the_last_real_step(causal: bool, cross: bool) -> None:
    torch.manual_seed(0)
    enc = TransformerEncoder(D, 2, 3, attn_dropout=0.3, relu_dropout=0.3, res_dropout=0.3, cross=cross, causal=causal)
    x, lens = torch.randn(3, 6, D), torch.tensor([6, 2, 4])
    kv, kv_lens = (torch.randn(3, 5, D), torch.tensor([5, 3, 1])) if cross else (None, None)
    enc.eval()
    with torch.no_grad():
        full = last_real_step(enc(x, lens, kv, kv_lens), lens)
        last = enc(x, lens, kv, kv_lens, last_only=True)
    assert last.shape == (3, D)
    assert torch.allclose(full, last, atol=1e-6)
    # training: the same gradients on every parameter (dropout off so both see the same draws)
    enc.train()
    for m in enc.modules():
        if hasattr(m, "p"):
            m.p = 0.0
        if hasattr(m, "dropout") and isinstance(m.dropout, float):
            m.dropout = 0.0
    grads = []
    for last_only in (False, True):
        enc.zero_grad()
        out = enc(x, lens, kv, kv_lens, last_only=last_only)
        (out if last_only else last_real_step(out, lens)).square().sum().backward()
        grads.append([p.grad.clone() for p in enc.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_mult_prediction_reads_the_last_real_step() -> None:
    model = _mult().eval()
    feats, lens = _feats({k: [3, 5] for k in DIMS})
    with torch.no_grad():
        full = model(feats, lens).prediction
        cut = model({k: v[:1, :3] for k, v in feats.items()}, {k: v[:1] for k, v in lens.items()}).prediction
        # a step past the length changes nothing; the last real step does
        bumped = {k: v.clone() for k, v in feats.items()}
        for v in bumped.values():
            v[0, 2] += 1.0
        moved = model(bumped, lens).prediction
    assert torch.allclose(full[0], cut[0], atol=1e-5)
    assert not torch.allclose(full[0], moved[0], atol=1e-4)


@pytest.mark.parametrize("dims", [{"text": 6, "audio": 5}, DIMS])
def test_mult_builds_one_crossmodal_stack_per_target_source_pair(dims: dict[str, int]) -> None:
    model = _mult(dims).train()
    assert isinstance(model, MulT)
    n = len(dims)
    assert list(model.encoders) == list(dims)
    assert sum(len(t) for t in model.encoders.values()) == n * (n - 1)  # 2 with two modalities, 6 with three
    assert all(set(model.encoders[t]) == set(dims) - {t} for t in dims)
    assert model.representation_dims == {k: (n - 1) * D for k in dims}
    feats, lens = _feats({k: [4, 2] for k in dims}, dims)
    reps = model.encode(feats, lens)
    for k in dims:
        assert reps[k].shape == (2, 4, (n - 1) * D)
        assert torch.all(reps[k][1, 2:] == 0)  # zero at padding
    out = model(feats, lens)
    assert out.prediction.shape == (2, 1)
    out.prediction.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_mult_takes_unaligned_modalities() -> None:
    model = _mult().eval()
    lengths = {"text": [5, 2, 4], "audio": [8, 6, 3], "visual": [3, 1, 2]}
    feats, lens = _feats(lengths)
    noisy = {k: v.clone() for k, v in feats.items()}
    for k, v in noisy.items():
        for i, n in enumerate(lengths[k]):
            v[i, n:] = 1e3  # garbage in every padding
    with torch.no_grad():
        batched = model(feats, lens).prediction
        assert torch.allclose(model(noisy, lens).prediction, batched, atol=1e-5)
        for i in range(3):
            alone = model(
                {k: feats[k][i : i + 1, : lengths[k][i]] for k in DIMS}, {k: lens[k][i : i + 1] for k in DIMS}
            ).prediction
            assert torch.allclose(alone[0], batched[i], atol=1e-5)


def test_temporal_kernel_above_one_does_not_leak_padding() -> None:
    proj = TemporalProjection(3, D, kernel_size=3)
    x = torch.randn(1, 6, 3)
    lens = torch.tensor([4])
    garbage = x.clone()
    garbage[0, 4:] = 1e3
    assert torch.allclose(proj(x, lens)[0, :4], proj(garbage, lens)[0, :4])
    assert torch.allclose(proj(x, lens)[0, :4], proj(x[:, :4], lens)[0], atol=1e-6)
    model = _mult(kernel_size=3).eval()
    feats, lens = _feats({k: [3, 6] for k in DIMS})
    with torch.no_grad():
        batched = model(feats, lens).prediction
        alone = model({k: v[:1, :3] for k, v in feats.items()}, {k: v[:1] for k, v in lens.items()}).prediction
    assert torch.allclose(batched[0], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match="odd"):
        TemporalProjection(3, D, kernel_size=2)


def test_heads_must_divide_hidden() -> None:
    with pytest.raises(ValueError, match=r"heads \(3\) must divide hidden \(8\)"):
        create_model("mult", DIMS, hidden=8, heads=3)


@pytest.mark.parametrize("dims", [{"text": 6, "audio": 5}, DIMS])
def test_mult_mmlatch_masks_have_each_input_shape(dims: dict[str, int]) -> None:
    model = _mult(dims, name="mult-mmlatch").eval()
    assert isinstance(model, TopDown) and isinstance(model.backbone, MulT)
    feats, lens = _feats({k: [6, 4] for k in dims}, dims)
    with torch.no_grad():
        out = model(feats, lens)
    assert set(out.masks) == set(dims)
    for k, m in out.masks.items():
        assert m.shape == feats[k].shape
        assert torch.all((m >= 0) & (m <= 1))
        assert torch.all(m[1, 4:] == 0)
    # the feedback reads MulT's last crossmodal layer: (n - 1) d per step
    assert model.feedback["text__audio"].rnn.input_size == (len(dims) - 1) * D


@pytest.mark.parametrize("causal", [False, True])
def test_inference_in_length_sorted_halves_gives_each_sample_its_own_prediction(causal: bool) -> None:
    """Inference runs a batch of mixed lengths as two length-sorted halves cut to their
    longest sample: every prediction must be what the sample gets alone (and what the whole
    padded batch gives), unaligned modalities included."""
    model = _mult(causal=causal).eval()
    lens = {"text": [3, 12, 4, 11, 2, 12, 5, 10, 3], "audio": [2, 9, 3, 10, 2, 7, 4, 8, 1], "visual": [3, 12, 4, 11, 2, 12, 5, 10, 3]}
    feats, lengths = _feats(lens)
    assert model._length_halves(feats, lengths) is None  # grad enabled: never split
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            torch.set_num_threads(2)
            assert model._length_halves(feats, lengths) is None  # more than one thread: never split
            torch.set_num_threads(1)  # one thread: split
            halves = model._length_halves(feats, lengths)
            assert halves is not None and sorted(torch.cat(halves).tolist()) == list(range(9))
            split = model(feats, lengths).prediction
            model.split_padding_share = False
            whole = model(feats, lengths).prediction
            alone = torch.cat([
                model({k: v[i : i + 1, : lens[k][i]] for k, v in feats.items()}, {k: v[i : i + 1] for k, v in lengths.items()}).prediction
                for i in range(9)
            ])
    finally:
        torch.set_num_threads(threads)
    assert torch.allclose(split, whole, atol=1e-5) and torch.allclose(split, alone, atol=1e-5)


def test_a_hooked_submodule_sees_the_whole_batch_in_one_call() -> None:
    """Latent probes record a submodule's output per batch: no halves then."""
    model = _mult().eval()
    lens = {k: [2, 12, 3, 11, 2, 12, 3, 12, 2] for k in DIMS}
    feats, lengths = _feats(lens)
    seen = []
    handle = model.memories["text"].register_forward_hook(lambda mod, inp, out: seen.append(out.shape[0]))
    with torch.no_grad():
        model(feats, lengths)
    handle.remove()
    assert seen == [9]


def _both_paths(enc: TransformerEncoder, *args, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """enc's inference output with the packed-rows path forced on, then off."""
    outs = []
    for share in (1e-9, False):
        enc.pack_padding_share = share
        with torch.no_grad():
            outs.append(enc(*args, **kw))
    del enc.pack_padding_share
    return outs[0], outs[1]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("cross", [False, True])
def test_packed_rows_give_the_padded_values_at_real_steps_and_zero_at_padding(causal: bool, cross: bool) -> None:
    """Inference on the real steps only (LayerNorms, projections, feed-forward on packed rows)
    against the padded layout, float64: the same values at every real step and at each
    sample's last step, zero at padded steps; the packed path really taken."""
    torch.manual_seed(0)
    enc = TransformerEncoder(D, 2, 3, cross=cross, causal=causal).double().eval()
    x, lens = torch.randn(4, 7, D, dtype=torch.float64), torch.tensor([7, 2, 4, 1])
    kv, kv_lens = (torch.randn(4, 6, D, dtype=torch.float64), torch.tensor([6, 3, 1, 2])) if cross else (None, None)
    calls = []
    real = TransformerLayer.forward_rows
    try:
        TransformerLayer.forward_rows = lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
        packed, padded = _both_paths(enc, x, lens, kv, kv_lens)
        assert len(calls) == 3
        packed_last, padded_last = _both_paths(enc, x, lens, kv, kv_lens, last_only=True)
        assert len(calls) == 6
    finally:
        TransformerLayer.forward_rows = real
    real_steps = (torch.arange(7)[None, :] < lens[:, None]).unsqueeze(2)
    assert torch.allclose(packed.masked_fill(~real_steps, 0), padded.masked_fill(~real_steps, 0), atol=1e-12, rtol=0)
    assert torch.equal(packed.masked_fill(real_steps, 0), torch.zeros_like(packed))
    assert torch.allclose(packed_last, padded_last, atol=1e-12, rtol=0)
    assert torch.allclose(packed_last, last_real_step(padded, lens), atol=1e-12, rtol=0)


def test_packed_rows_ignore_what_the_padding_holds_and_how_long_it_is() -> None:
    torch.manual_seed(1)
    enc = TransformerEncoder(D, 2, 2, cross=True, causal=True).eval()
    x, kv = torch.randn(3, 6, D), torch.randn(3, 5, D)
    lens, kv_lens = torch.tensor([6, 3, 2]), torch.tensor([5, 2, 4])
    garbage_x, garbage_kv = x.clone(), kv.clone()
    garbage_x[1, 3:], garbage_kv[1, 2:] = 1e4, float("nan")
    longer_x, longer_kv = torch.cat([x, torch.randn(3, 4, D)], 1), torch.cat([kv, torch.randn(3, 3, D)], 1)
    enc.pack_padding_share = 1e-9
    with torch.no_grad():
        out = enc(x, lens, kv, kv_lens, last_only=True)
        assert torch.equal(out, enc(garbage_x, lens, garbage_kv, kv_lens, last_only=True))
        assert torch.allclose(out, enc(longer_x, lens, longer_kv, kv_lens, last_only=True), atol=1e-6)


def test_packed_rows_are_not_used_in_training_with_gradients_or_under_layer_hooks() -> None:
    enc = TransformerEncoder(D, 2, 2)
    x, lens = torch.randn(2, 6, D), torch.tensor([6, 1])
    assert not enc.train()._packs(x, lens, None, None)
    enc.eval()
    assert not enc._packs(x, lens, None, None)  # gradients enabled
    with torch.no_grad():
        assert enc._packs(x, lens, None, None)
        assert not enc._packs(x, torch.tensor([6, 6]), None, None)  # no padding to skip
        seen = []
        handle = enc.layers[0].register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
        assert not enc._packs(x, lens, None, None)
        enc(x, lens)
        handle.remove()
    assert seen == [(2, 6, D)]  # the hook saw the padded layout it expects


def test_packed_rows_under_bfloat16_autocast_match_the_padded_path() -> None:
    torch.manual_seed(2)
    enc = TransformerEncoder(30, 5, 2, cross=True, causal=True).eval()
    x, kv = torch.randn(4, 9, 30), torch.randn(4, 8, 30)
    lens, kv_lens = torch.tensor([9, 4, 2, 6]), torch.tensor([8, 8, 3, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        packed, padded = _both_paths(enc, x, lens, kv, kv_lens, last_only=True)
    assert packed.dtype == padded.dtype
    assert torch.allclose(packed.float(), padded.float(), atol=3e-2, rtol=3e-2)


def test_mult_predictions_are_the_same_with_and_without_packed_rows(monkeypatch) -> None:
    model = _mult(causal=True).double().eval()
    lens = {"text": [3, 12, 4, 11, 2], "audio": [2, 9, 3, 10, 2], "visual": [3, 12, 4, 11, 2]}
    feats, lengths = _feats(lens)
    feats = {k: v.double() for k, v in feats.items()}
    preds = []
    for share in (1e-9, False):
        monkeypatch.setattr(TransformerEncoder, "pack_padding_share", share)
        with torch.no_grad():
            preds.append(model(feats, lengths).prediction)
    assert torch.allclose(preds[0], preds[1], atol=1e-12, rtol=0)
