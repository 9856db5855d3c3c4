"""The released MMLatch layout (names and shapes written out in fixtures/) <-> our authors variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from mmlatch.cli.main import app
from mmlatch.models import MOSEI_DIMS, count_parameters, create_model
from mmlatch.models.authors import (
    AUTHORS_MODELS,
    AuthorsCheckpointError,
    authors_dims,
    authors_key_map,
    authors_model_kind,
    from_authors_state,
    to_authors_state,
)

#: the released AVTClassifier's state-dict names and shapes at MOSEI dims (d = 100), per model
LAYOUT = json.loads((Path(__file__).parent / "fixtures" / "authors_layout_mosei.json").read_text())
#: the released models' parameter counts at MOSEI dims
RELEASED_PARAMS = {"baseline": 1_633_801, "mmlatch": 2_741_153, "mmlatch-linear": 1_716_419}
runner = CliRunner()


def _released_state(model: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(*shape, generator=g) for k, shape in LAYOUT[model].items()}


def test_layout_sizes() -> None:
    assert {m: len(v) for m, v in LAYOUT.items()} == {"baseline": 67, "mmlatch": 91, "mmlatch-linear": 79}


@pytest.mark.parametrize("model", list(AUTHORS_MODELS))
def test_key_map_covers_every_released_and_every_own_tensor_with_equal_shapes(model: str) -> None:
    keys = authors_key_map(model)
    assert set(keys) == set(LAYOUT[model])  # every released tensor, nothing else
    ours = create_model(model, MOSEI_DIMS, variant="authors").state_dict()
    assert sorted(keys.values()) == sorted(ours)  # one-to-one onto ours
    for theirs, own in keys.items():
        assert list(ours[own].shape) == LAYOUT[model][theirs], (theirs, own)
    assert authors_model_kind(LAYOUT[model]) == model
    assert authors_dims({k: torch.empty(s) for k, s in LAYOUT[model].items()}) == (MOSEI_DIMS, 100, 1)


@pytest.mark.parametrize("model", list(AUTHORS_MODELS))
def test_authors_variant_has_the_released_parameter_count(model: str) -> None:
    assert count_parameters(create_model(model, MOSEI_DIMS, variant="authors")) == RELEASED_PARAMS[model]
    assert sum(torch.Size(s).numel() for s in LAYOUT[model].values()) == RELEASED_PARAMS[model]


def test_symmetric_attention_and_feedback_names_by_direction() -> None:
    keys = authors_key_map("mmlatch")
    # SymmetricAttention(x=visual, y=audio): qx/ky/vy attend from visual to audio
    assert keys["encoder.fuser.att_fuser.va.qx.weight"] == "backbone.fusion.cross.visual__audio.q.weight"
    assert keys["encoder.fuser.att_fuser.va.ky.weight"] == "backbone.fusion.cross.visual__audio.k.weight"
    assert keys["encoder.fuser.att_fuser.va.kx.weight"] == "backbone.fusion.cross.audio__visual.k.weight"
    assert keys["encoder.fuser.att_fuser.tav.q.weight"] == "backbone.fusion.to_primary.audio_visual.q.weight"
    assert keys["encoder.fm.f1.mask1.rnn.weight_ih_l0"] == "feedback.audio__text.rnn.weight_ih_l0"
    assert keys["encoder.fm.f2.mask2.rnn.weight_ih_l0"] == "feedback.visual__audio.rnn.weight_ih_l0"
    assert keys["encoder.fm.f3.mask1.rnn.weight_ih_l0"] == "feedback.text__visual.rnn.weight_ih_l0"
    assert keys["encoder.text.encoder.rnn.rnn.weight_ih_l0_reverse"] == "backbone.encoders.text.rnn.bwd.weight_ih_l0"
    assert authors_key_map("mmlatch-linear")["encoder.fm.f3.mask2.bias"] == "feedback.audio__visual.proj.bias"


@pytest.mark.parametrize("model", list(AUTHORS_MODELS))
def test_import_then_export_round_trips_exactly(model: str) -> None:
    state = _released_state(model)
    net = create_model(model, MOSEI_DIMS, variant="authors")
    ours = from_authors_state(state, model, net.state_dict())
    net.load_state_dict(ours)
    back = to_authors_state(net.state_dict(), model)
    assert list(back) == list(authors_key_map(model)) and set(back) == set(state)
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_bad_layouts_list_what_differs() -> None:
    state = _released_state("baseline")
    expected = create_model("baseline", MOSEI_DIMS, variant="authors").state_dict()
    bad = dict(state)
    del bad["classifier.bias"]
    bad["encoder.extra.weight"] = torch.zeros(1)
    bad["encoder.fuser.rnn.attention.q.weight"] = torch.zeros(3, 3)
    with pytest.raises(AuthorsCheckpointError) as err:
        from_authors_state(bad, "baseline", expected)
    msg = str(err.value)
    assert "missing keys: classifier.bias" in msg
    assert "unexpected keys: encoder.extra.weight" in msg
    assert "encoder.fuser.rnn.attention.q.weight: (3, 3) (expected (200, 200))" in msg


def _tiny_released(model: str, tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    """A released-layout checkpoint at MOSEI dims with d = 4, made from our authors variant."""
    torch.manual_seed(0)
    net = create_model(model, MOSEI_DIMS, variant="authors", hidden=4).eval()
    path = tmp_path / f"{model}.pth"
    torch.save(to_authors_state(net.state_dict(), model), path)
    return path, net


def test_cli_import_writes_a_run_that_evaluate_accepts(tmp_path: Path) -> None:
    from mmlatch.training.run import load_run_model

    ckpt, net = _tiny_released("mmlatch", tmp_path)
    run = tmp_path / "run"
    res = runner.invoke(app, ["import", "authors", str(ckpt), "--model", "mmlatch", "--out", str(run), "--data", "synthetic"])
    assert res.exit_code == 0, res.output
    spec = json.loads((run / "model.json").read_text())
    assert spec["model_args"]["variant"] == "authors" and spec["model_args"]["hidden"] == 4
    assert spec["modality_dims"] == MOSEI_DIMS
    model, _, _ = load_run_model(run)
    feats = {k: torch.randn(2, 5, f) for k, f in MOSEI_DIMS.items()}
    lens = torch.tensor([5, 3])
    with torch.no_grad():
        assert torch.equal(model(feats, lens).prediction, net(feats, lens).prediction)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"] == "mmlatch" and cfg["data"] == "synthetic"
    cfg["data_args"] = {"n_train": 4, "n_valid": 4, "n_test": 6, "min_len": 3, "max_len": 6}  # a small draw
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["evaluate", "--run", str(run)])
    assert res.exit_code == 0, res.output
    assert "mae" in json.loads(res.output)


@pytest.mark.parametrize(
    "model,mutate,message",
    [
        ("mmlatch", None, "holds a released baseline"),
        ("mult", None, "--model must be one of baseline, mmlatch, mmlatch-linear"),
        ("baseline", "drop", "missing keys: classifier.bias"),
    ],
)
def test_cli_import_errors_are_one_clear_line(model: str, mutate: str | None, message: str, tmp_path: Path) -> None:
    ckpt, net = _tiny_released("baseline", tmp_path)
    if mutate == "drop":
        state = torch.load(ckpt, weights_only=True)
        del state["classifier.bias"]
        torch.save(state, ckpt)
    res = runner.invoke(app, ["import", "authors", str(ckpt), "--model", model, "--out", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["import", "authors", str(tmp_path / "none.pth"), "--model", "baseline", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "does not exist" in res.output
