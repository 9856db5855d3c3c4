"""Training, run directories and the CLI, on tiny synthetic data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import numpy as np

from mmlatch.cli.main import app
from mmlatch.data.synthetic import make_synthetic, text_flags
from mmlatch.metrics import SENTIMENT_METRICS
from mmlatch.models import create_model, list_models
from mmlatch.training import TrainConfig, load_config
from tiny import tiny_settings

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "mmlatch" / "configs"
TINY = tiny_settings()
runner = CliRunner()


def _train(out: Path, model: str = "mmlatch", seed: int = 0, epochs: int = 2, extra: list[str] = ()) -> dict:
    args = ["train", "--data", "synthetic", "--model", model, "--epochs", str(epochs), "--seed", str(seed),
            "--out", str(out), "--no-progress"]
    for item in [*TINY, *extra]:
        args += ["--set", item]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    _train(out)
    return out


def test_train_writes_the_run_directory(run_dir: Path) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["model", "data", "seed", "params", "best_epoch", "epochs_run", "valid", "test", "precision"]
    assert metrics["model"] == "mmlatch" and metrics["data"] == "synthetic" and metrics["seed"] == 0
    assert metrics["epochs_run"] == 2 and 1 <= metrics["best_epoch"] <= 2
    assert list(metrics["test"]) == list(SENTIMENT_METRICS) == list(metrics["valid"])
    assert metrics["params"] > 0
    for name in ("config.yaml", "model.json", "model.safetensors", "checkpoints/best.ckpt",
                 "environment.json"):
        assert (run_dir / name).is_file(), name
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["model"] == "mmlatch" and cfg["epochs"] == 2 and cfg["data_args"]["n_train"] == 48
    rows = list(csv.DictReader((run_dir / "log" / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]  # one row per epoch, counted from 1
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()  # needed only while unfinished
    assert all(r["train_loss"] and r["val_loss"] and r["val_mae"] for r in rows)
    # best_epoch is the epoch with the lowest validation loss
    losses = [float(r["val_loss"]) for r in rows]
    assert metrics["best_epoch"] == losses.index(min(losses)) + 1


def test_evaluate_equals_the_test_block(run_dir: Path) -> None:
    res = runner.invoke(app, ["evaluate", "--run", str(run_dir)])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output)
    expected = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert printed == expected
    res = runner.invoke(app, ["evaluate", "--run", str(run_dir), "--split", "valid"])
    assert json.loads(res.output) == json.loads((run_dir / "metrics.json").read_text())["valid"]


def test_same_seed_gives_identical_metrics(run_dir: Path, tmp_path: Path) -> None:
    again = _train(tmp_path / "again")
    assert (tmp_path / "again" / "metrics.json").read_text() == (run_dir / "metrics.json").read_text()
    other = _train(tmp_path / "other", seed=1)
    assert other["test"] != again["test"]


def test_training_reduces_the_loss(tmp_path: Path) -> None:
    # a higher rate: 48 samples, 4 epochs (the default paper variant learns slowly at 5e-4 there)
    _train(tmp_path / "b", model="baseline", epochs=4, extra=["lr=0.003"])
    rows = list(csv.DictReader((tmp_path / "b" / "log" / "metrics.csv").open()))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--model", "nope"], "unknown model 'nope'"),
        (["train", "--set", "epochs=zero"], "epochs must be an integer"),
        (["train", "--set", "bogus=1"], "unknown key"),
        (["train", "--config", "/nonexistent.yaml"], "does not exist"),
        (["train", "--data", "/nonexistent/data.pkl"], "/nonexistent/data.pkl"),
        (["evaluate", "--run", "/nonexistent"], "has no model.json"),
    ],
)
def test_bad_input_gives_one_clear_line(args: list[str], message: str, tmp_path: Path) -> None:
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "x")] if args[0] == "train" else args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output


def test_models_lists_every_model_with_params() -> None:
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0
    for name in list_models():
        assert f"\n{name} " in "\n" + res.output


@pytest.mark.parametrize(
    "path",
    sorted(p for p in CONFIGS.rglob("*.yaml") if p.parent.name != "experiments"),  # those: test_experiment.py
    ids=lambda p: str(p.relative_to(CONFIGS)),
)
def test_every_shipped_config_loads_and_builds(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)
    model = create_model(cfg.model, {"text": 300, "audio": 74, "visual": 35}, **cfg.model_args)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_synthetic_data_is_seeded_and_planted() -> None:
    a = make_synthetic(n_train=300, n_valid=5, n_test=5, seed=3)
    b = make_synthetic(n_train=300, n_valid=5, n_test=5, seed=3)
    tr = a.split("train")
    assert (tr.features["audio"] == b.split("train").features["audio"]).all()
    assert a.modality_dims == {"text": 300, "audio": 74, "visual": 35}
    y = tr.labels[:, 0]
    assert y.min() >= -3 and y.max() <= 3 and (y == 0).any()
    assert all(((tr.features[m][i, tr.lengths[m][i]:] == 0).all()) for m in tr.features for i in range(20))
    lengths = tr.lengths["audio"]
    valid = np.arange(tr.features["audio"].shape[1])[None, :] < lengths[:, None]
    # over all steps, audio group A mixes the label with the decoy: informative but far from exact
    proj = np.linalg.lstsq(tr.features["audio"][valid][:, 0:12], np.repeat(y, lengths), rcond=None)[0]
    step_a = tr.features["audio"][:, :, 0:12] @ proj  # (N, L) per-step read-out of group A
    mean_all = (step_a * valid).sum(1) / lengths
    assert 0.3 < abs(np.corrcoef(mean_all, y)[0, 1]) < 0.85
    # the genuine/decoy flag is the text's dominant direction; on genuine steps alone, group A
    # gives the label almost exactly (what a text-driven mask can recover)
    flag = text_flags(tr)  # (N, L), up to a global sign
    best = 0.0
    for sign in (1.0, -1.0):
        keep = valid & (sign * flag > 0)
        mean_kept = (step_a * keep).sum(1) / np.maximum(keep.sum(1), 1)
        best = max(best, abs(np.corrcoef(mean_kept[keep.any(1)], y[keep.any(1)])[0, 1]))
    assert best > 0.95
    # group B expresses an independent distractor: no view of the label, nor of the decoy
    # mixed into group A (which would let a model cancel the decoy without the text's flags)
    group_a = (tr.features["audio"][:, :, 0:12] * valid[:, :, None]).sum(1) / lengths[:, None]  # (N, 12)
    group_b = (tr.features["audio"][:, :, 12:24] * valid[:, :, None]).sum(1) / lengths[:, None]
    both = np.c_[group_a, group_b, np.ones(len(y))]
    w = np.linalg.lstsq(both[:150], y[:150], rcond=None)[0]
    assert abs(np.corrcoef(both[150:] @ w, y[150:])[0, 1]) < 0.85  # 0.94 if B showed the decoy


def test_synthetic_options() -> None:
    from mmlatch.data.dataset import DataError

    default = make_synthetic(n_train=40, n_valid=5, n_test=5, seed=1)
    assert default.feature_names["visual"][16] == "noise16" and default.feature_names["visual"][0] == "A0"
    face = make_synthetic(n_train=40, n_valid=5, n_test=5, seed=1, visual_context_scale=2.0)
    assert face.feature_names["visual"][16] == "flag0" and face.feature_names["visual"][0] == "noise0"
    # phrases (the default, mean run 5) change the text's flag far less often than words
    def sign_changes(ds: object) -> float:
        tr = ds.split("train")  # type: ignore[attr-defined]
        valid = np.arange(tr.features["text"].shape[1])[None, :] < tr.lengths["text"][:, None]
        flag = text_flags(tr)
        both = valid[:, 1:] & valid[:, :-1]
        return float((flag[:, 1:] != flag[:, :-1])[both].mean())

    assert sign_changes(make_synthetic(n_train=40, n_valid=5, n_test=5, seed=1, flag_run=1)) > 0.4
    assert sign_changes(default) < 0.2
    for bad in ({"flag_run": 0.5}, {"visual_context_scale": -1.0}, {"genuine_frac": 0.0}):
        with pytest.raises(DataError, match=next(iter(bad))):
            make_synthetic(n_train=5, n_valid=5, n_test=5, **bad)


def test_topdown_args_reach_topdown_models_only() -> None:
    from mmlatch.training.config import TrainConfig
    from mmlatch.training.run import build_model

    data = make_synthetic(n_train=5, n_valid=5, n_test=5)
    cfg = TrainConfig(model="mmlatch", topdown_args={"stage1_grad": True, "mask_dropout": 0.1})
    model, spec = build_model(cfg, data)
    assert model.stage1_grad is True and spec["model_args"]["stage1_grad"] is True
    assert spec["model_args"]["mask_dropout"] == 0.1
    cfg = TrainConfig(model="mmlatch", topdown_args={"stage1_grad": True}, model_args={"stage1_grad": False})
    assert build_model(cfg, data)[0].stage1_grad is False  # model_args win
    baseline, spec = build_model(TrainConfig(model="baseline", topdown_args={"stage1_grad": True}), data)
    assert "stage1_grad" not in spec["model_args"]


def test_synthetic_clean_modality_is_the_strongest_and_leaves_the_rest_unchanged() -> None:
    from mmlatch.data.dataset import DataError

    def r2(split, modality: str, group: slice) -> float:  # least squares from step-mean A features to s
        x = split.features[modality][:, :, group].sum(1) / split.lengths[modality][:, None]
        design = np.c_[x, np.ones(len(x))]
        w = np.linalg.lstsq(design, split.labels[:, 0], rcond=None)[0]
        return 1 - float(((design @ w - split.labels[:, 0]) ** 2).mean() / split.labels[:, 0].var())

    plain = make_synthetic(n_train=300, n_valid=5, n_test=5, seed=2).split("train")
    clean = make_synthetic(n_train=300, n_valid=5, n_test=5, seed=2, clean_modality="visual").split("train")
    assert r2(clean, "visual", slice(0, 8)) > 0.9 > 0.6 > r2(plain, "visual", slice(0, 8))
    assert np.array_equal(plain.features["audio"], clean.features["audio"])
    assert np.array_equal(plain.features["text"], clean.features["text"])
    assert np.array_equal(plain.features["visual"][:, :, 8:], clean.features["visual"][:, :, 8:])
    with pytest.raises(DataError, match="clean_modality"):
        make_synthetic(n_train=5, n_valid=5, n_test=5, clean_modality="text")
