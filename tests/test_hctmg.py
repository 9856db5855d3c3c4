"""HCT-MG: size, gate learning, primary choice in training vs evaluation, auxiliary loss."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from mmlatch.cli.main import app
from mmlatch.models import MOSEI_DIMS, count_parameters, create_model
from mmlatch.models.hctmg import HCTMG
from mmlatch.modules import ModelOutput, TopDown

DIMS = {"text": 6, "audio": 5, "visual": 4}
SMALL = {"hidden": 8, "encoder_layers": 1, "fusion_layers": 1}


def _model(dims: dict[str, int] = DIMS, name: str = "hctmg", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, dims, **{**SMALL, **kw})


def _batch(lengths: list[int], dims: dict[str, int] = DIMS, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor(lengths)
    mask = torch.arange(max(lengths))[None, :] < lens[:, None]
    return {k: torch.randn(len(lengths), max(lengths), f, generator=g) * mask[..., None] for k, f in dims.items()}, lens


def test_hctmg_is_under_one_million_parameters_at_mosei_dims() -> None:
    n = count_parameters(create_model("hctmg", MOSEI_DIMS))
    assert 100_000 < n < 1_000_000, n


def test_gate_picks_the_modality_that_alone_predicts_the_label() -> None:
    torch.manual_seed(0)
    dims = {"text": 4, "audio": 4, "visual": 4}
    n, steps = 256, 60
    g = torch.Generator().manual_seed(0)
    lens = torch.randint(3, 7, (n,), generator=g)
    mask = (torch.arange(6)[None, :] < lens[:, None]).unsqueeze(2)  # (N, 6, 1)
    feats = {k: torch.randn(n, 6, f, generator=g) * mask for k, f in dims.items()}
    # the label is a function of audio only; text and visual are independent noise
    labels = (feats["audio"][..., 0].sum(1) / lens).unsqueeze(1) * 3.0  # (N, 1)
    model = create_model("hctmg", dims, **SMALL).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        idx = torch.randint(0, n, (32,), generator=g)
        out = model({k: v[idx] for k, v in feats.items()}, lens[idx])
        loss = F.l1_loss(out.prediction, labels[idx]) + model.auxiliary_loss(out, labels[idx], F.l1_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    names = list(dims)
    assert names[int(model.gate_ema.argmax())] == "audio", model.gate_ema
    assert model.eval().fusion_order(out.extras["gate"])[0] == "audio"
    with torch.no_grad():
        gate = model(feats, lens).extras["gate"]
    assert (gate.argmax(dim=1) == 1).float().mean() > 0.9


def test_training_ranks_by_the_batch_gate_and_updates_the_ema() -> None:
    model = _model().train()
    gate = torch.tensor([[0.2, 0.1, 0.7], [0.2, 0.3, 0.5]])  # batch mean: visual > audio = text
    assert model.fusion_order(gate) == ["visual", "text", "audio"]  # ties keep modality order
    before = model.gate_ema.clone()
    feats, lens = _batch([4, 3])
    out = model(feats, lens)
    expected = 0.9 * before + 0.1 * out.extras["gate"].detach().mean(0)
    assert torch.allclose(model.gate_ema, expected, atol=1e-6)
    model.eval()
    with torch.no_grad():
        model(feats, lens)
    assert torch.allclose(model.gate_ema, expected, atol=1e-6)  # no update in evaluation


def test_eval_primary_comes_from_the_buffer_not_the_batch() -> None:
    model = _model().eval()
    model.gate_ema.copy_(torch.tensor([0.2, 0.3, 0.5]))
    any_gate = torch.tensor([[0.9, 0.05, 0.05]])
    assert model.fusion_order(any_gate) == ["visual", "audio", "text"]
    feats, lens = _batch([5, 2, 4])
    with torch.no_grad():
        batched = model(feats, lens).prediction
        for i, n in enumerate(lens.tolist()):
            alone = model({k: v[i : i + 1, :n] for k, v in feats.items()}, lens[i : i + 1]).prediction
            assert torch.allclose(alone[0], batched[i], atol=1e-5)
        # the buffer is what decides: another ranking gives another prediction
        model.gate_ema.copy_(torch.tensor([0.5, 0.3, 0.2]))
        assert not torch.allclose(model(feats, lens).prediction, batched, atol=1e-4)


def test_auxiliary_loss_by_hand() -> None:
    model = _model(dims={"text": 6, "audio": 5}, aux_weight=0.5, gate_weight=1.0, gate_tau=0.5)
    labels = torch.tensor([[1.0], [-1.0]])
    unimodal = torch.tensor([[[1.0], [0.0]], [[-1.0], [1.0]]])  # text exact (L=0), audio L=1.5
    gate = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    out = ModelOutput(torch.zeros(2, 1), None, {"gate": gate, "unimodal": unimodal})
    target = torch.softmax(torch.tensor([0.0, -1.5]) / 0.5, dim=0)
    kl = sum(float((target * (target.log() - gate[b].log())).sum()) for b in range(2)) / 2
    expected = 0.5 * (0.0 + 1.5) + kl
    assert float(model.auxiliary_loss(out, labels, F.l1_loss)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("dims", [{"text": 6, "audio": 5}, DIMS])
def test_two_and_three_modalities_fuse_in_n_minus_one_stages(dims: dict[str, int]) -> None:
    model = _model(dims).train()
    assert isinstance(model, HCTMG) and len(model.stages) == len(dims) - 1
    feats, lens = _batch([4, 2], dims)
    out = model(feats, lens)
    assert out.prediction.shape == (2, 1)
    assert out.extras["gate"].shape == (2, len(dims))
    assert torch.allclose(out.extras["gate"].sum(1), torch.ones(2))
    assert out.extras["unimodal"].shape == (2, len(dims), 1)
    (out.prediction.sum() + model.auxiliary_loss(out, torch.zeros(2, 1), F.l1_loss)).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unaligned_modalities_are_padding_invariant() -> None:
    model = _model().eval()
    g = torch.Generator().manual_seed(3)
    lengths = {"text": [5, 2], "audio": [3, 7], "visual": [4, 1]}
    feats = {k: torch.randn(2, max(lengths[k]), f, generator=g) for k, f in DIMS.items()}
    lens = {k: torch.tensor(v) for k, v in lengths.items()}
    with torch.no_grad():
        batched = model(feats, lens).prediction
        for i in range(2):
            alone = model(
                {k: feats[k][i : i + 1, : lengths[k][i]] for k in DIMS}, {k: lens[k][i : i + 1] for k in DIMS}
            ).prediction
            assert torch.allclose(alone[0], batched[i], atol=1e-5)


@pytest.mark.parametrize("dims", [{"text": 6, "audio": 5}, DIMS])
def test_hctmg_mmlatch_keeps_gate_extras_and_auxiliary_loss(dims: dict[str, int]) -> None:
    model = _model(dims, name="hctmg-mmlatch").train()
    assert isinstance(model, TopDown) and isinstance(model.backbone, HCTMG)
    feats, lens = _batch([4, 3], dims)
    out = model(feats, lens)
    assert out.extras["gate"].shape == (2, len(dims))
    assert {k: m.shape for k, m in out.masks.items()} == {k: v.shape for k, v in feats.items()}
    aux = model.auxiliary_loss(out, torch.zeros(2, 1), F.l1_loss)
    assert aux is not None and aux.requires_grad


def test_cli_training_logs_gate_weights_and_primary(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", "synthetic", "--model", "hctmg", "--epochs", "2", "--out", str(out), "--no-progress"]
    for item in ["data_args.n_train=32", "data_args.n_valid=16", "data_args.n_test=16", "data_args.max_len=8",
                 "model_args.hidden=8", "model_args.encoder_layers=1", "model_args.fusion_layers=1",
                 "batch_size=16", "threads=1"]:
        args += ["--set", item]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "log" / "metrics.csv").open()))
    assert len(rows) == 2
    for row in rows:
        gates = [float(v) for k, v in row.items() if k.startswith("gate_") and v]
        assert len(gates) >= 2 and sum(gates) == pytest.approx(1.0, abs=1e-4)
        assert row["primary"] != ""


def test_fixed_primary_overrides_the_gate_in_training_and_evaluation() -> None:
    model = _model(primary="audio").train()
    gate = torch.tensor([[0.1, 0.2, 0.7]])  # the gate ranks visual > audio > text
    assert model.fusion_order(gate) == ["audio", "visual", "text"]  # auxiliaries keep the gate's order
    model.eval()
    model.gate_ema.copy_(torch.tensor([0.6, 0.1, 0.3]))
    assert model.fusion_order(gate) == ["audio", "text", "visual"]
    feats, lens = _batch([4, 3])
    with torch.no_grad():
        out = model(feats, lens)
    assert out.extras["primary"].tolist() == [1, 1]
    free = _model().eval()
    free.load_state_dict(model.state_dict())
    free.gate_ema.copy_(torch.tensor([0.3, 0.6, 0.1]))  # the gate now ranks audio, text, visual too
    with torch.no_grad():
        assert torch.allclose(free(feats, lens).prediction, out.prediction, atol=1e-6)
    with pytest.raises(ValueError, match="primary modality 'face'"):
        _model(primary="face")


def test_cli_fixed_primary_is_logged(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", "synthetic", "--model", "hctmg", "--epochs", "1", "--out", str(out), "--no-progress"]
    for item in ["data_args.n_train=32", "data_args.n_valid=16", "data_args.n_test=16", "data_args.max_len=8",
                 "model_args.hidden=8", "model_args.encoder_layers=1", "model_args.fusion_layers=1",
                 "model_args.primary=visual", "batch_size=16", "threads=1"]:
        args += ["--set", item]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    row = next(csv.DictReader((out / "log" / "metrics.csv").open()))
    assert row["primary"] == "2.0" and float(row["primary_share"]) == 1.0
