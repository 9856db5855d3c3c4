"""The two variants of baseline/mmlatch/mmlatch-linear: their pieces on tiny inputs, their settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmlatch.models import create_model
from mmlatch.models.latefusion import DEFAULT_VARIANT, VARIANTS
from mmlatch.modules import AttentiveSumReadout, LastStateReadout, LSTMFeedback, SymmetricAttentionFusion

DIMS = {"text": 6, "audio": 5, "visual": 4}


def test_last_state_is_the_bilstm_final_hidden_state_of_the_real_steps() -> None:
    torch.manual_seed(0)
    readout = LastStateReadout(3, 2)
    ref = nn.LSTM(3, 2, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, f"{name}_l0").copy_(getattr(readout.rnn.fwd, f"{name}_l0"))
            getattr(ref, f"{name}_l0_reverse").copy_(getattr(readout.rnn.bwd, f"{name}_l0"))
    x = torch.randn(2, 5, 3)
    lens = torch.tensor([5, 3])
    x[1, 3:] = 99.0  # padding content must not matter
    with torch.no_grad():
        out = readout(x, lens)
        for i, n in enumerate(lens.tolist()):
            _, (h_n, _) = ref(x[i : i + 1, :n])  # h_n: (2 directions, 1, H)
            assert torch.allclose(out[i], h_n[0, 0] + h_n[1, 0], atol=1e-6)


def test_last_state_one_step_by_hand() -> None:
    """One step, one unit, no recurrent input: h = o * tanh(i * g) per direction."""
    readout = LastStateReadout(1, 1)
    with torch.no_grad():
        for lstm in (readout.rnn.fwd, readout.rnn.bwd):
            lstm.weight_ih_l0.copy_(torch.tensor([[1.0], [0.0], [2.0], [-1.0]]))  # gates i, f, g, o
            lstm.weight_hh_l0.zero_()
            lstm.bias_ih_l0.zero_()
            lstm.bias_hh_l0.zero_()
    x = torch.tensor([[[0.5]]])
    s = torch.sigmoid
    h = s(torch.tensor(-0.5)) * torch.tanh(s(torch.tensor(0.5)) * torch.tanh(torch.tensor(1.0)))
    assert torch.allclose(readout(x, torch.tensor([1])), 2 * h.view(1, 1), atol=1e-7)


def test_attentive_sum_readout_ignores_padding_and_has_2d_outputs() -> None:
    torch.manual_seed(0)
    readout = AttentiveSumReadout(3, 2, dropout=0.1).eval()
    x = torch.randn(2, 4, 3)
    lens = torch.tensor([4, 2])
    with torch.no_grad():
        out = readout(x, lens)
        alone = readout(x[1:, :2], lens[1:])
    assert out.shape == (2, 4) and readout.output_dim == 4
    assert torch.allclose(out[1], alone[0], atol=1e-6)


def test_a_avt_residual_is_the_only_fusion_difference() -> None:
    names = ["text", "audio", "visual"]
    torch.manual_seed(0)
    paper = SymmetricAttentionFusion(names, 3, "text", attn_dropout=0.0, primary_residual=True)
    authors = SymmetricAttentionFusion(names, 3, "text", attn_dropout=0.0, primary_residual=False)
    authors.load_state_dict(paper.state_dict())
    reps = {n: torch.randn(1, 4, 3) for n in names}
    masks = {n: torch.ones(1, 4, dtype=torch.bool) for n in names}
    a, p = authors(reps, masks), paper(reps, masks)
    blocks_a, blocks_p = a.split(3, dim=-1), p.split(3, dim=-1)
    # order: r_T, r_A, r_V, m_TA, m_TV, m_AV, a_AVT (the released code's order)
    for i, n in enumerate(names):
        assert torch.equal(blocks_a[i], reps[n])
    m_ta = authors.cross["text__audio"](reps["text"], reps["audio"], masks["audio"]) + authors.cross["audio__text"](
        reps["audio"], reps["text"], masks["text"]
    )
    assert torch.allclose(blocks_a[3], m_ta)
    assert all(torch.equal(x, y) for x, y in zip(blocks_a[:6], blocks_p[:6]))
    assert torch.allclose(blocks_p[6] - blocks_a[6], blocks_a[5], atol=1e-6)  # the residual: + m_AV


def test_feedback_dropout_acts_on_the_lstm_outputs_in_training_only() -> None:
    torch.manual_seed(0)
    fb = LSTMFeedback(3, 2, dropout=1.0)
    r = torch.randn(1, 4, 3)
    assert torch.equal(fb.train()(r, torch.tensor([4])), torch.full((1, 4, 2), 0.5))  # sigmoid(0)
    h = fb.rnn(r.transpose(0, 1))[0].transpose(0, 1)  # the generator LSTM is time-major
    assert torch.allclose(fb.eval()(r, torch.tensor([4])), torch.sigmoid(h))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_settings(variant: str) -> None:
    model = create_model("mmlatch", DIMS, variant=variant, hidden=4)
    net = model.backbone
    enc = net.encoders["text"]
    authors = variant == "authors"
    assert model.stage1_grad is authors
    assert model.mask_dropout.p == (0.2 if authors else 0.0)
    assert model.feedback["audio__text"].dropout.p == (0.1 if authors else 0.0)
    assert enc.rnn.dropout.p == (0.2 if authors else 0.0)
    assert enc.attention.dropout == (0.2 if authors else 0.0)
    assert enc.dropout.p == (0.0 if authors else 0.2)
    assert net.fusion.to_primary["audio_visual"].residual is (not authors)
    assert net.fusion.cross["text__audio"].dropout == (0.1 if authors else 0.0)
    assert isinstance(net.readout, AttentiveSumReadout if authors else LastStateReadout)
    assert net.head.in_features == (8 if authors else 4)
    assert net.dropout.p == (0.0 if authors else 0.2)
    # explicit options still win over the variant's
    other = create_model("mmlatch", DIMS, variant=variant, hidden=4, stage1_grad=not authors, mask_dropout=0.3)
    assert other.stage1_grad is (not authors) and other.mask_dropout.p == 0.3


def test_default_variant_and_wrong_variant_error() -> None:
    assert DEFAULT_VARIANT in VARIANTS
    for name in ("baseline", "mmlatch", "mmlatch-linear"):
        with pytest.raises(ValueError, match="model_args.variant must be one of authors, paper; got 'nope'"):
            create_model(name, DIMS, variant="nope")


def test_variant_reaches_the_model_through_a_config() -> None:
    from mmlatch.data.synthetic import make_synthetic
    from mmlatch.training.config import TrainConfig, apply_overrides
    from mmlatch.training.run import build_model

    data = make_synthetic(n_train=2, n_valid=1, n_test=1, min_len=2, max_len=3)
    values = apply_overrides(TrainConfig(model="mmlatch").to_dict(), ["model_args.variant=paper", "model_args.hidden=4"])
    model, spec = build_model(TrainConfig.from_dict(values), data)
    assert spec["model_args"]["variant"] == "paper" and isinstance(model.backbone.readout, LastStateReadout)


@pytest.mark.parametrize("name", ["baseline", "mmlatch", "mmlatch-linear"])
def test_paper_variant_padding_gradients_and_export(name: str, tmp_path) -> None:
    """The registry-wide checks of test_models run the default variant; these the other one."""
    from mmlatch.analysis.export import export_model

    other = next(v for v in VARIANTS if v != DEFAULT_VARIANT)
    torch.manual_seed(0)
    model = create_model(name, DIMS, variant=other, hidden=4)  # authors: the released padding
    g = torch.Generator().manual_seed(1)
    lens = torch.tensor([3, 6, 5])
    real = (torch.arange(6)[None] < lens[:, None]).unsqueeze(2)
    feats = {k: torch.randn(3, 6, f, generator=g) * real for k, f in DIMS.items()}
    out = model.train()(feats, lens)
    out.prediction.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing
    export_model(model.eval(), DIMS, "torchscript", tmp_path / "released.pt", verify=True)
    # padding never counts once masked (the released padding does count: test_training_parity)
    model = create_model(name, DIMS, variant=other, hidden=4, padding="masked").eval()
    with torch.no_grad():
        batched = model(feats, lens).prediction
        for i, n in enumerate(lens.tolist()):
            alone = model({k: v[i : i + 1, :n] for k, v in feats.items()}, lens[i : i + 1]).prediction
            assert torch.allclose(batched[i], alone[0], atol=1e-5)
    export_model(model, DIMS, "torchscript", tmp_path / "m.pt", verify=True)  # raises on mismatch
