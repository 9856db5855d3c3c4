"""The field's classic models (tfn, lmf, lf-dnn, ef-lstm, mfn, graph-mfn, misa, self-mm, mmim):
their fusions and losses on hand-worked values, modality subsets, refusals, and the shipped
tune spaces.

Shapes, gradients, padding invariance, save/load and export: tests/test_models.py and
tests/test_export.py (registry-driven)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmlatch.models import create_model, model_arguments
from mmlatch.models.graphmfn import DynamicFusionGraph
from mmlatch.models.lmf import LowRankFusion
from mmlatch.models.tfn import TensorFusion
from mmlatch.training.config import TrainConfig, apply_overrides
from mmlatch.training.experiment import load_experiment

from padded import padded_modalities

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "src" / "mmlatch" / "configs" / "experiments"
ZOO = ("tfn", "lmf", "lf-dnn", "ef-lstm", "mfn", "graph-mfn", "misa", "self-mm", "mmim")
#: the pretrained-text models (an utterance vector per modality, auxiliary losses)
TEXT_ZOO = ("misa", "self-mm", "mmim")
SMALL = {
    "hidden": 8, "audio_hidden": 4, "visual_hidden": 4, "text_out": 4, "post_fusion_dim": 8, "memsize": 8,
    "attn_hidden": 8, "memory_hidden": 8, "gamma1_hidden": 8, "gamma2_hidden": 8, "out_hidden": 8,
    "inner_node_dim": 8, "efficacy_hidden": 8,
}


def _model(name: str, dims: dict[str, int]) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, dims, **{k: v for k, v in SMALL.items() if k in model_arguments(name)})


def test_tensor_fusion_on_hand_values() -> None:
    fusion = TensorFusion({"a": 1, "b": 2})
    z = {"a": torch.tensor([[2.0]]), "b": torch.tensor([[3.0, 5.0]])}
    # [1, 2] (x) [1, 3, 5] = [1, 3, 5, 2, 6, 10]: both unimodal vectors and their products
    assert fusion(z).tolist() == [[1.0, 3.0, 5.0, 2.0, 6.0, 10.0]]
    assert TensorFusion({"a": 1, "b": 2, "c": 3}).output_dim == 2 * 3 * 4


def test_low_rank_fusion_equals_the_full_tensor_times_its_weight() -> None:
    torch.manual_seed(0)
    dims = {"a": 3, "b": 2, "c": 4}
    lmf = LowRankFusion(dims, output_dim=2, rank=3)
    z = {k: torch.randn(5, d) for k, d in dims.items()}
    # the full weight W[i, j, k, o] = sum_r w_r A_r[i, o] B_r[j, o] C_r[k, o]
    A, B, C = (lmf.factors[k] for k in dims)
    W = torch.einsum("r,rio,rjo,rko->ijko", lmf.rank_weights[0], A, B, C).reshape(-1, 2)
    full = TensorFusion(dims)(z) @ W + lmf.bias
    assert torch.allclose(lmf(z), full, atol=1e-5)


def test_fusion_graph_has_a_vertex_per_subset_and_an_efficacy_per_edge() -> None:
    three = DynamicFusionGraph({"text": 3, "audio": 2, "visual": 2}, inner=4, efficacy_hidden=4)
    assert len(three.vertices) == 7 and three.num_edges == 19  # the paper's 19 efficacies
    two = DynamicFusionGraph({"audio": 2, "visual": 2}, inner=4, efficacy_hidden=4)
    assert two.vertices == [("audio",), ("visual",), ("audio", "visual")] and two.num_edges == 2 + 3
    prev = {k: torch.randn(3, 2) for k in ("audio", "visual")}
    assert two(prev, {k: torch.randn(3, 2) for k in prev}).shape == (3, 4)


@pytest.mark.parametrize("name", ZOO)
def test_two_modalities_work_and_one_is_refused(name: str) -> None:
    dims = {"audio": 5, "visual": 4}
    feats, lens = padded_modalities({"audio": [6, 2], "visual": [6, 2]}, dims)
    out = _model(name, dims).eval()(feats, lens)
    assert out.prediction.shape == (2, 1) and torch.isfinite(out.prediction).all()
    with pytest.raises(ValueError, match=f"{name} fuses modalities and needs at least 2, got \\['audio'\\]"):
        _model(name, {"audio": 5})


@pytest.mark.parametrize("name", ["tfn", "lmf", "lf-dnn", *TEXT_ZOO])
def test_utterance_models_take_unaligned_input(name: str) -> None:
    dims = {"text": 6, "audio": 5, "visual": 4}
    feats, lens = padded_modalities({"text": [4, 2], "audio": [12, 7], "visual": [9, 5]}, dims)
    model = _model(name, dims).eval()
    with torch.no_grad():
        both = model(feats, lens).prediction
        alone = model({k: v[1:2, : int(lens[k][1])] for k, v in feats.items()}, {k: v[1:2] for k, v in lens.items()})
    assert torch.allclose(both[1], alone.prediction[0], atol=1e-5)


@pytest.mark.parametrize("name", ["ef-lstm", "mfn", "graph-mfn"])
def test_step_models_refuse_unaligned_input(name: str) -> None:
    dims = {"audio": 5, "visual": 4}
    feats, lens = padded_modalities({"audio": [6, 2], "visual": [4, 2]}, dims)
    with pytest.raises(ValueError, match=f"{name} needs word-aligned modalities"):
        _model(name, dims)(feats, lens)


@pytest.mark.parametrize("name", ZOO)
def test_tune_space_loads_and_every_choice_builds(name: str) -> None:
    exp = load_experiment(EXPERIMENTS / f"tune-{name}.yaml", seeds=1)
    assert [r.model for r in exp.runs] == [name] and exp.search
    base = exp.run_config(exp.runs[0], 0).to_dict()
    for pick in (0, -1):  # the smallest and the largest choice of every key
        values = {}
        for key, spec in exp.search.items():
            assert spec["type"] == "categorical", key
            values[key] = spec["choices"][pick]
        cfg = TrainConfig.from_dict(apply_overrides(base, [f"{k}={v}" for k, v in values.items()]))
        assert set(cfg.model_args) <= set(model_arguments(name))
        model = create_model(name, {"audio": 3, "visual": 2}, **cfg.model_args)
        assert sum(p.numel() for p in model.parameters()) > 0


def test_sequence_option_chooses_lstm_or_pooled_subnetworks() -> None:
    from mmlatch.modules.subnets import PooledSubNet, SequenceSubNet

    dims = {"text": 6, "audio": 5, "visual": 4}
    paper = _model("tfn", dims)  # the papers: an LSTM for text, means for the others
    assert [type(s) for s in paper.subnets.values()] == [SequenceSubNet, PooledSubNet, PooledSubNet]
    every = create_model("lf-dnn", dims, sequence="all", hidden=8, audio_hidden=4, visual_hidden=4, text_out=4)
    assert all(isinstance(s, SequenceSubNet) for s in every.subnets.values())
    assert every.subnets["audio"].output_dim == 4  # audio's LSTM keeps audio_hidden
    assert all(isinstance(s, PooledSubNet) for s in _model("lmf", {"audio": 5, "visual": 4}).subnets.values())
    with pytest.raises(ValueError, match=r"model_args.sequence names \['speech'\], not among"):
        create_model("tfn", dims, sequence="text,speech")


@pytest.mark.parametrize("name", ["lmf", "mfn"])
def test_training_starts_the_classic_models_at_the_training_label_mean(name: str) -> None:
    import numpy as np

    from mmlatch.training import load_config
    from mmlatch.training.run import build_model, load_data

    tiny = ["data_args.n_train=16", "data_args.n_valid=4", "data_args.n_test=4", "data_args.max_len=6",
            "data_args.min_len=2", *(f"model_args.{k}={v}" for k, v in SMALL.items() if k in model_arguments(name))]
    cfg = load_config(None, tiny, data="synthetic", model=name)
    data = load_data(cfg)
    model, _ = build_model(cfg, data)
    mean = float(np.mean(data.split("train").labels))
    bias = model.fusion.bias if name == "lmf" else model.head[-1].bias
    assert bias.shape == (1,) and bias.item() == pytest.approx(mean, abs=1e-5) and abs(mean) > 1e-3


def test_zoo_experiment_runs_every_classic_model_beside_ours() -> None:
    # the table itself is model-agnostic (summary_table groups by run name); what must hold is
    # that every run of the shipped experiment resolves to a model that builds on its data
    exp = load_experiment(EXPERIMENTS / "zoo-mmmo.yaml", data="synthetic", seeds=1)
    assert [r.model for r in exp.runs] == ["mmlatch", "mult", "hctmg", *ZOO]
    for run in exp.runs:
        cfg = exp.run_config(run, 1)
        assert cfg.modalities == ["audio", "visual"] and cfg.standardize
        if run.model in ZOO:
            model = create_model(run.model, {"audio": 74, "visual": 35}, **cfg.model_args)
            assert sum(p.numel() for p in model.parameters()) > 0


def test_misa_losses_on_hand_values() -> None:
    from mmlatch.models.misa import cmd, diff_loss

    # centred codes whose features are uncorrelated across the batch: A^T B = 0
    a = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    b = torch.tensor([[0.0, 2.0], [0.0, 2.0], [0.0, -2.0], [0.0, -2.0]])
    assert diff_loss(a, b).item() == pytest.approx(0.0, abs=1e-9)
    # the same code twice: A^T A of unit rows = [[4, 0], [0, 0]] -> mean of squares 16 / 4
    assert diff_loss(a, a).item() == pytest.approx(4.0, abs=1e-4)
    # CMD: identical batches -> 0; shifted by (3, 4) -> the distance of the means, 5
    x = torch.randn(6, 2)
    assert cmd(x, x).item() == pytest.approx(0.0, abs=1e-4)
    assert cmd(x, x + torch.tensor([3.0, 4.0])).item() == pytest.approx(5.0, abs=1e-4)


def test_self_mm_generates_unimodal_labels_as_the_paper() -> None:
    from mmlatch.models.selfmm import unimodal_labels

    y, ds, dm = torch.tensor([2.0, 2.0, -1.0]), torch.tensor([2.0, 1.0, 0.5]), torch.tensor([1.0, 1.0, 0.5])
    # alpha = ds / dm; y_s = 0.5 alpha y + 0.5 (y + ds - dm): 2 + 1.5 = 3.5; y (same distances); -1
    assert unimodal_labels(y, ds, dm, 0.0, 5.0).tolist() == pytest.approx([3.5, 2.0, -1.0], abs=1e-6)
    assert unimodal_labels(y, ds, dm, 0.0, 3.0)[0].item() == pytest.approx(3.0)  # clipped at H
    # around a centre c: the same labels shifted (MMMO's 1..5 around its mean)
    assert unimodal_labels(y + 3, ds, dm, 3.0, 5.0).tolist() == pytest.approx([6.5, 5.0, 2.0], abs=1e-6)


def test_self_mm_unimodal_heads_learn_only_where_their_label_differs() -> None:
    model = _model("self-mm", {"audio": 5, "visual": 4}).train()
    model.init_output_bias(torch.tensor([1.0]))
    assert model.label_center.item() == 1.0 and model.fusion_head.rest[-1].bias.item() == 1.0
    feats, lens = padded_modalities({"audio": [6, 4, 5, 3], "visual": [6, 4, 5, 3]}, {"audio": 5, "visual": 4})
    out = model(feats, lens)
    assert out.extras["unimodal"].shape == (4, 2, 1)
    above = torch.tensor([[2.0], [3.0], [2.5], [4.0]])  # no sample below the centre: no negative class yet
    assert model.auxiliary_loss(out, above, torch.nn.functional.l1_loss).item() == 0.0
    both = torch.tensor([[2.0], [0.0], [2.5], [-1.0]])
    assert model.auxiliary_loss(out, both, torch.nn.functional.l1_loss).item() > 0
    assert bool(model.centers_seen.all())


def test_mmim_cpc_and_anchor() -> None:
    from mmlatch.models.mmim import cpc_nce

    eye = torch.eye(2)  # each prediction equals its own target, orthogonal to the other
    assert cpc_nce(eye, eye).item() == pytest.approx(float(torch.log(torch.e + torch.tensor(1.0))) - 1.0, abs=1e-6)
    with_text = _model("mmim", {"text": 6, "audio": 5, "visual": 4})
    assert with_text.anchor == "text" and list(with_text.mi) == ["audio", "visual"]
    without = _model("mmim", {"audio": 5, "visual": 4})
    assert without.anchor == "audio" and list(without.mi) == ["visual"]


@pytest.mark.parametrize("name", TEXT_ZOO)
def test_text_encoder_choices(name: str) -> None:
    dims = {"text": 6, "audio": 5, "visual": 4}
    feats, lens = padded_modalities({"text": [7, 3], "audio": [7, 3], "visual": [7, 3]}, dims)
    small = {k: v for k, v in SMALL.items() if k in model_arguments(name)}
    model = create_model(name, dims, text_encoder="lstm", text_hidden=4, **small).eval()
    with torch.no_grad():  # the BiLSTM text encoder never reads padding either
        both = model(feats, lens).prediction
        alone = model({k: v[1:2, :3] for k, v in feats.items()}, {k: v[1:2] for k, v in lens.items()}).prediction
    assert torch.allclose(both[1], alone[0], atol=1e-5)
    with pytest.raises(ValueError, match=r"text_encoder must be one of \['frozen', 'lstm', 'finetune'\], got 'bert'"):
        create_model(name, dims, text_encoder="bert")


@pytest.mark.parametrize("name", TEXT_ZOO)
def test_pretrained_text_models_train_with_their_auxiliary_loss(name: str, tmp_path: Path) -> None:
    import csv

    from mmlatch.training import load_config, train

    tiny = ["data_args.n_train=24", "data_args.n_valid=8", "data_args.n_test=8", "data_args.max_len=6",
            "data_args.min_len=2", "epochs=2", "batch_size=8", "threads=1", "progress=false",
            *(f"model_args.{k}={v}" for k, v in SMALL.items() if k in model_arguments(name))]
    train(load_config(None, tiny, data="synthetic", model=name), tmp_path / name)
    rows = list(csv.DictReader(open(tmp_path / name / "log" / "metrics.csv")))
    assert len(rows) == 2 and all(float(r["train_aux_loss"]) != 0.0 for r in rows)


def test_mmim_bound_learns_from_its_own_term_only() -> None:
    # the authors train the bound's MLPs on -lld alone (their own optimiser) and the encoders
    # on -beta * lld: one objective here must give the MLPs exactly the first gradient
    model = _model("mmim", {"audio": 5, "visual": 4}).train()
    feats, lens = padded_modalities({"audio": [6, 4, 5, 3], "visual": [6, 4, 5, 3]}, {"audio": 5, "visual": 4})
    out = model(feats, lens)
    labels = torch.tensor([[1.0], [-1.0], [0.5], [-0.5]])
    weight = model.mi["visual"].mu[0].weight
    (got,) = torch.autograd.grad(model.auxiliary_loss(out, labels, torch.nn.functional.l1_loss), weight)
    za, zv = out.extras["z_audio"].detach(), out.extras["z_visual"].detach()
    (want,) = torch.autograd.grad(-model.mi["visual"](za, zv), weight)
    assert torch.allclose(got, want, atol=1e-6) and want.abs().sum() > 0
