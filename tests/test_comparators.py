"""The Table 1 comparators (RAVEN, MCTN, Multimodal Routing): mechanics on hand-worked values,
unaligned input, every task's output width, and ``mmlatch analyze routing``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mmlatch.cli.main import app
from mmlatch.models import create_model
from mmlatch.models.mctn import masked_mse, stretch
from mmlatch.models.raven import GatedShift, word_chunks
from mmlatch.models.routing import CapsuleRouting, feature_subsets

from padded import padded_modalities
from tiny import tiny_settings

DIMS = {"text": 6, "audio": 5, "visual": 4}
SMALL = {
    "raven": {"hidden": 8, "nonverbal_hidden": 4},
    "mctn": {"hidden": 8, "head_hidden": 4},
    "routing": {"hidden": 8, "heads": 2, "layers": 1, "pose_dim": 4, "concept_dim": 4},
}
runner = CliRunner()


def _model(name: str, dims: dict[str, int] = DIMS, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, dims, **{**SMALL[name], **kw})


def _unaligned(lengths: dict[str, list[int]], dims: dict[str, int] = DIMS, seed: int = 0):
    """End-padded modalities of their own lengths: modality -> (B, L_k, F_k), lengths per modality."""
    return padded_modalities(lengths, dims, seed)


# ----------------------------------------------------------------------------- RAVEN


def test_raven_shift_and_alpha_clipping_on_two_words() -> None:
    # word dim 2, one nonverbal modality with a 1-d state; gate w = sigmoid(0) = 0.5,
    # U = [[2], [0]], b_h = 0, beta = 0.5
    shift = GatedShift(2, {"audio": 1}, beta=0.5)
    with torch.no_grad():
        shift.gates["audio"].weight.zero_()
        shift.gates["audio"].bias.zero_()
        shift.projections["audio"].weight.copy_(torch.tensor([[2.0], [0.0]]))
    words = torch.tensor([[[3.0, 4.0], [6.0, 8.0]]])  # ||e|| = 5, 10
    states = {"audio": torch.tensor([[[4.0], [1.0]]])}
    shifted, alpha = shift(words, states)
    # word 1: h = 0.5 * (8, 0) = (4, 0); alpha = min(0.5 * 5 / 4, 1) = 0.625 -> e' = (5.5, 4)
    # word 2: h = 0.5 * (2, 0) = (1, 0); 0.5 * 10 / 1 = 5 is clipped to 1 -> e' = (7, 8)
    assert torch.allclose(alpha[0, :, 0], torch.tensor([0.625, 1.0]))
    assert torch.allclose(shifted[0], torch.tensor([[5.5, 4.0], [7.0, 8.0]]))
    # the shift's norm is bounded by beta * ||e|| (word 1: |alpha h| = 2.5 = 0.5 * 5)
    assert torch.allclose((shifted - words).norm(dim=2)[0, 0], torch.tensor(2.5))


def test_raven_splits_unaligned_frames_into_equal_chunks_per_word() -> None:
    start, size = word_chunks(torch.tensor([3, 2, 4]), torch.tensor([10, 2, 2]), max_words=4)
    # 10 frames over 3 words: [0, 3), [3, 6), [6, 10); padded word 3: frame 0
    assert start[0].tolist() == [0, 3, 6, 0] and size[0].tolist() == [3, 3, 4, 1]
    # aligned (2 words, 2 frames): one frame per word
    assert start[1].tolist()[:2] == [0, 1] and size[1].tolist()[:2] == [1, 1]
    # fewer frames than words: every word still gets one frame, in order
    assert start[2].tolist() == [0, 0, 1, 1] and size[2].tolist() == [1, 1, 1, 1]


def test_raven_on_unaligned_input_uses_every_weight_and_ignores_padding() -> None:
    model = _model("raven").train()
    feats, lens = _unaligned({"text": [4, 2], "audio": [12, 7], "visual": [9, 5]})
    out = model(feats, lens)
    out.prediction.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing  # the nonverbal LSTMs' recurrent weights act when a word has > 1 frame
    model.eval()
    with torch.no_grad():
        both = model(feats, lens).prediction
        alone = model({k: v[1:2, : int(lens[k][1])] for k, v in feats.items()}, {k: v[1:2] for k, v in lens.items()})
    assert torch.allclose(both[1], alone.prediction[0], atol=1e-5)
    assert torch.all(alone.extras["alpha"] <= 1) and torch.all(out.extras["alpha"][1, 2:] == 0)


def test_raven_export_refuses_per_modality_lengths(tmp_path: Path) -> None:
    from mmlatch.analysis.export import export_model

    with pytest.raises(ValueError, match="word-aligned input only"):
        export_model(_model("raven").eval(), DIMS, "torchscript", tmp_path / "r.pt", per_modality_lengths=True)


def test_raven_verbal_modality_is_named_or_refused() -> None:
    assert _model("raven", {"audio": 5, "visual": 4}).verbal == "audio"  # no text: the first
    with pytest.raises(ValueError, match="verbal modality 'words' is not among"):
        _model("raven", verbal="words")
    with pytest.raises(ValueError, match="beta must be > 0"):
        _model("raven", beta=0.0)


# ----------------------------------------------------------------------------- MCTN


def test_mctn_at_test_time_reads_only_the_source() -> None:
    model = _model("mctn").eval()
    assert model.source == "text" and model.targets == ["visual", "audio"]  # text -> visual -> audio
    feats, lens = _unaligned({"text": [5, 3], "audio": [5, 3], "visual": [5, 3]})
    g = torch.Generator().manual_seed(7)
    noise = {k: (torch.randn(v.shape, generator=g) * 100 if k != "text" else v) for k, v in feats.items()}
    with torch.no_grad():
        clean, noisy = model(feats, lens), model(noise, lens)
    assert torch.equal(clean.prediction, noisy.prediction) and clean.extras is None
    # in training the targets are read: they change the translation losses, not the prediction
    model.train()
    torch.manual_seed(1)
    a = model(feats, lens)
    torch.manual_seed(1)
    b = model(noise, lens)
    assert torch.equal(a.prediction, b.prediction)
    assert not torch.allclose(a.extras["translation_visual"], b.extras["translation_visual"])
    assert not torch.allclose(a.extras["translation_audio"], b.extras["translation_audio"])


def test_mctn_losses_are_weighted_as_the_authors() -> None:
    model = _model("mctn").train()
    feats, lens = _unaligned({"text": [4, 6], "audio": [10, 3], "visual": [7, 8]})  # unaligned too
    out = model(feats, lens)
    e = out.extras
    assert set(e) == {"translation_visual", "translation_audio", "cycle"} and e["cycle"].shape == (2,)
    expected = 0.1 * (e["translation_visual"].mean() + e["translation_audio"].mean()) + 0.1 * e["cycle"].mean()
    assert torch.allclose(model.auxiliary_loss(out, torch.zeros(2, 1), torch.nn.functional.l1_loss), expected)
    assert model.eval().auxiliary_loss(model(feats, lens), torch.zeros(2, 1), torch.nn.functional.l1_loss) is None


def test_mctn_helpers_on_hand_values() -> None:
    # MSE over real steps only: sample 0 has 2 real steps of error 1 and 2 -> (1 + 4) / 2
    pred = torch.tensor([[[1.0], [2.0], [9.0]], [[0.0], [0.0], [0.0]]])
    assert torch.allclose(masked_mse(pred, torch.zeros_like(pred), torch.tensor([2, 3])), torch.tensor([2.5, 0.0]))
    # 2 source states stretched over 4 target steps: 0, 0, 1, 1
    states = torch.tensor([[[10.0], [20.0]]])
    assert stretch(states, torch.tensor([2]), torch.tensor([4]), 4)[0, :, 0].tolist() == [10, 10, 20, 20]
    with pytest.raises(ValueError, match="targets .* must be every modality"):
        _model("mctn", targets="audio")


# ----------------------------------------------------------------------------- Routing


def test_routing_iterations_on_a_tiny_example() -> None:
    # 2 features with 1-d poses, 2 concepts of size 1: votes v_0 = (1, -1), v_1 = (2, 2)
    routing = CapsuleRouting(2, 1, 2, 1, iterations=0)
    with torch.no_grad():
        routing.weight.copy_(torch.tensor([[[[1.0], [-1.0]]], [[[1.0], [1.0]]]]))  # (N, P, J, D)
    poses = torch.tensor([[[1.0], [2.0]]])
    act = torch.tensor([[1.0, 0.5]])
    # uniform pass: c_0 = 1*.5*1 + .5*.5*2 = 1, c_1 = 1*.5*(-1) + .5*.5*2 = 0
    c, r = routing(poses, act)
    assert torch.allclose(c[0, :, 0], torch.tensor([1.0, 0.0])) and torch.all(r == 0.5)
    routing.iterations = 1
    c, r = routing(poses, act)
    # r_0 = softmax(1*1, -1*0) ; r_1 = softmax(2*1, 2*0)
    r0 = [math.e / (math.e + 1), 1 / (math.e + 1)]
    r1 = [math.e**2 / (math.e**2 + 1), 1 / (math.e**2 + 1)]
    assert torch.allclose(r[0], torch.tensor([r0, r1]), atol=1e-6)
    c0 = 1 * r0[0] * 1 + 0.5 * r1[0] * 2
    c1 = 1 * r0[1] * (-1) + 0.5 * r1[1] * 2
    assert torch.allclose(c[0, :, 0], torch.tensor([c0, c1]), atol=1e-6)


def test_routing_coefficients_sum_to_one_over_concepts() -> None:
    model = _model("routing", iterations=3).eval()
    assert model.feature_names == ["text", "audio", "visual", "text+audio", "text+visual", "audio+visual", "text+audio+visual"]
    feats, lens = _unaligned({"text": [4, 6], "audio": [9, 2], "visual": [3, 5]})
    with torch.no_grad():
        out = model(feats, lens)
    r = out.extras["routing"]
    assert r.shape == (2, 7, 7) and torch.all(r >= 0)  # 7 concepts for a single regression output
    assert torch.allclose(r.sum(dim=2), torch.ones(2, 7))
    assert torch.all((out.extras["activation"] > 0) & (out.extras["activation"] < 1))
    assert feature_subsets(["a", "b"]) == [("a",), ("b",), ("a", "b")]


# ----------------------------------------------------------------------------- every task


@pytest.mark.parametrize("name", ["raven", "mctn", "routing"])
@pytest.mark.parametrize("outputs", [1, 3, 4, 17])  # sentiment/MMMO, YouTube, IEMOCAP, POM
def test_every_task_width_trains(name: str, outputs: int) -> None:
    model = _model(name, num_outputs=outputs).train()
    feats, lens = _unaligned({"text": [4, 3], "audio": [4, 3], "visual": [4, 3]})
    out = model(feats, lens)
    assert out.prediction.shape == (2, outputs)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out.prediction, torch.ones_like(out.prediction))
    aux = getattr(model, "auxiliary_loss", None)
    if aux is not None:
        loss = loss + aux(out, torch.ones_like(out.prediction), torch.nn.functional.l1_loss)
    loss.backward()
    if name == "routing" and outputs > 1:  # one concept per output (class / emotion / column)
        assert out.extras["routing"].shape[2] == outputs and model.readout is None


def test_two_modalities_work_for_every_comparator() -> None:
    dims = {"audio": 5, "visual": 4}
    feats, lens = _unaligned({"audio": [6, 2], "visual": [6, 2]}, dims)
    for name in ("raven", "mctn", "routing"):
        out = _model(name, dims).eval()(feats, lens)
        assert out.prediction.shape == (2, 1)
    assert _model("mctn", dims).targets == ["visual"]  # no text: audio -> visual, the bimodal MCTN


# ----------------------------------------------------------------------------- analyze routing

TINY = tiny_settings(["model_args.heads=2", "model_args.layers=1", "model_args.pose_dim=4", "model_args.concept_dim=4"], n_train=32, n_test=24, max_len=10)


def test_analyze_routing_writes_class_means_that_sum_to_one(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["train", "--data", "synthetic", "--model", "routing", "--epochs", "1", "--out", str(run), "--no-progress"]
    for item in TINY:
        args += ["--set", item]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    png = tmp_path / "fig" / "routing.png"
    res = runner.invoke(app, ["analyze", "routing", "--run", str(run), "--out", str(png)])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output)
    assert Path(printed["png"]).is_file() and printed["csv"] == str(png.with_suffix(".csv"))
    assert sum(printed["counts"].values()) == 24  # every test sample in one sentiment class
    rows = list(csv.DictReader(Path(printed["csv"]).open()))
    assert {r["feature"] for r in rows} == {"text", "audio", "visual", "text+audio", "text+visual", "audio+visual", "text+audio+visual"}
    sums: dict[tuple[str, str], float] = {}
    for r in rows:
        if r["coefficient"] not in ("", "nan"):
            sums[(r["class"], r["feature"])] = sums.get((r["class"], r["feature"]), 0.0) + float(r["coefficient"])
        else:
            assert r["count"] == "0"  # an empty class is blank, never 0
    assert sums and all(abs(v - 1.0) < 1e-5 for v in sums.values())
    # a model without routing is a clear one-line error
    other = tmp_path / "b"
    args = ["train", "--data", "synthetic", "--model", "mctn", "--epochs", "1", "--out", str(other), "--no-progress"]
    for item in ["data_args.n_train=32", "data_args.n_valid=16", "data_args.n_test=16", "data_args.max_len=10", "model_args.hidden=4"]:
        args += ["--set", item]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, ["analyze", "routing", "--run", str(other)])
    assert res.exit_code == 2 and "no routing coefficients" in res.output and "Traceback" not in res.output
