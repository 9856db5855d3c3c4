"""Feature standardisation: statistics by hand, padding kept at zero, and the round trip
through a saved run (evaluate, load_run, predict apply the training statistics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mmlatch
from mmlatch.cli.main import app
from mmlatch.data import DataError, Split
from mmlatch.data.standardize import FeatureStats, fit_feature_stats
from mmlatch.modules.standardize import Standardized
from mmlatch.training.run import evaluate_run, load_run_model


def _split() -> Split:
    # audio: 2 samples, real steps [1, 3] and [5]; the 0-step is padding
    audio = np.array([[[1.0, 2.0], [3.0, 2.0]], [[5.0, 2.0], [0.0, 0.0]]], np.float32)
    return Split({"audio": audio}, {"audio": np.array([2, 1])}, np.zeros((2, 1), np.float32), ["a", "b"])


def test_statistics_by_hand_over_real_steps_only() -> None:
    stats = fit_feature_stats(_split())
    # feature 0 over real steps 1, 3, 5: mean 3, std sqrt(8/3); feature 1 is constant: std -> 1
    assert stats.mean["audio"] == pytest.approx([3.0, 2.0])
    assert stats.std["audio"] == pytest.approx([np.sqrt(8 / 3), 1.0])
    out = stats.apply(_split()).features["audio"]
    assert out[0, :, 0] == pytest.approx(np.array([-2.0, 0.0]) / np.sqrt(8 / 3))
    assert out[1, 0, 0] == pytest.approx(2.0 / np.sqrt(8 / 3))
    assert (out[1, 1] == 0).all() and (out[:, :, 1][[0, 0, 1], [0, 1, 0]] == 0).all()  # padding 0, centred


def test_stats_dict_round_trip_and_bad_input() -> None:
    stats = fit_feature_stats(_split())
    again = FeatureStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert np.array_equal(again.mean["audio"], stats.mean["audio"])
    with pytest.raises(DataError, match="std > 0"):
        FeatureStats.from_dict({"mean": {"audio": [0.0]}, "std": {"audio": [0.0]}})
    with pytest.raises(DataError, match="no standardisation statistics"):
        FeatureStats.from_dict({"mean": {"text": [0.0]}, "std": {"text": [1.0]}}).apply(_split())


def test_wrapper_equals_the_data_level_standardisation_and_ignores_padding() -> None:
    split = _split()
    stats = fit_feature_stats(split)
    seen = {}

    class Probe(torch.nn.Module):
        modality_dims = {"audio": 2}

        def forward(self, features, lengths):
            seen["x"] = features["audio"]
            return features["audio"].sum()

    model = Standardized(Probe(), stats.mean, stats.std)
    x = torch.from_numpy(split.features["audio"]).clone()
    x[1, 1] = 99.0  # padding content must not matter
    model({"audio": x}, torch.tensor([2, 1]))
    assert torch.allclose(seen["x"], torch.from_numpy(stats.apply(split).features["audio"]))
    assert model.modality_dims == {"audio": 2}  # the inner model's attributes show through


def _train(out: Path, standardize: bool) -> dict:
    args = ["train", "--data", "synthetic", "--model", "hctmg", "--epochs", "1", "--out", str(out), "--no-progress"]
    for item in ["data_args.n_train=32", "data_args.n_valid=16", "data_args.n_test=16", "data_args.max_len=8",
                 "model_args.hidden=8", "model_args.encoder_layers=1", "model_args.fusion_layers=1",
                 "batch_size=16", "threads=1", f"standardize={str(standardize).lower()}"]:
        args += ["--set", item]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return json.loads((out / "metrics.json").read_text())


def test_standardisation_round_trips_through_a_saved_run(tmp_path: Path) -> None:
    metrics = _train(tmp_path / "std", True)
    spec = json.loads((tmp_path / "std" / "model.json").read_text())
    assert set(spec["standardize"]["mean"]) == {"text", "audio", "visual"}
    # evaluate reloads the stored statistics: the same numbers as training's test block
    assert evaluate_run(tmp_path / "std", device="cpu")["mae"] == pytest.approx(metrics["test"]["mae"], abs=1e-6)
    model, _, cfg = load_run_model(tmp_path / "std")
    assert isinstance(model, Standardized)
    # load_run().predict on raw features equals the inner model on features standardised by hand
    data = mmlatch.data.load_dataset("synthetic", **cfg.data_args)
    test = data.split("test")
    raw = {k: v[:3] for k, v in test.features.items()}
    lengths = {k: v[:3] for k, v in test.lengths.items()}
    pred = mmlatch.load_run(tmp_path / "std").predict(raw, lengths).prediction
    stats = FeatureStats.from_dict(spec["standardize"])
    by_hand = stats.apply(Split(raw, lengths, test.labels[:3], test.ids[:3]))
    with torch.no_grad():
        inner = model.inner({k: torch.from_numpy(v) for k, v in by_hand.features.items()},
                            {k: torch.from_numpy(v) for k, v in lengths.items()}).prediction.numpy()
    assert np.allclose(pred, inner, atol=1e-5)
    # the statistics are the training split's (not the test split's)
    train_mean = fit_feature_stats(data.split("train")).mean["audio"]
    assert np.allclose(stats.mean["audio"], train_mean, atol=1e-6)


def test_runs_without_standardisation_store_none(tmp_path: Path) -> None:
    _train(tmp_path / "plain", False)
    assert "standardize" not in json.loads((tmp_path / "plain" / "model.json").read_text())
    model, _, _ = load_run_model(tmp_path / "plain")
    assert not isinstance(model, Standardized)


# --- standardize: auto (the default) -------------------------------------------------------

def _two_modalities(audio_scale: float, audio_shift: float) -> Split:
    """3 samples x 4 steps: unit-scale visual (std about 1), audio scaled and shifted; the
    third sample's last 2 steps are padding holding huge values (they must not count)."""
    rng = np.random.default_rng(0)
    lengths = np.array([4, 4, 2])
    audio = rng.standard_normal((3, 4, 2)).astype(np.float32) * audio_scale + audio_shift
    visual = rng.standard_normal((3, 4, 3)).astype(np.float32)
    audio[2, 2:] = 0.0
    visual[2, 2:] = 0.0
    return Split({"audio": audio, "visual": visual}, {"audio": lengths, "visual": lengths},
                 np.zeros((3, 1), np.float32), ["a", "b", "c"])


def test_auto_rule_switches_on_for_scaled_features_only() -> None:
    from mmlatch.data.standardize import auto_stats, describe_auto, off_unit_scale

    assert off_unit_scale(_two_modalities(1.0, 0.0)) == {}  # unit features: off
    stats, reasons = auto_stats(_two_modalities(1.0, 0.0))
    assert stats is None and "used as they are" in describe_auto(reasons, ["audio", "visual"])
    # a shifted mean (|mean| > 1), a large std (> 10) and a tiny std (< 0.1) each switch it on
    for scale, shift in ((1.0, 176.0), (40.0, 0.0), (0.01, 0.0)):
        reasons = off_unit_scale(_two_modalities(scale, shift))
        assert list(reasons) == ["audio"], (scale, shift)
        assert reasons["audio"].startswith("2 features, |mean| up to")
    stats, reasons = auto_stats(_two_modalities(1.0, 176.0))
    assert list(stats.mean) == ["audio"]  # only the off-scale modality gets statistics
    assert stats.mean["audio"] == pytest.approx(fit_feature_stats(_two_modalities(1.0, 176.0)).mean["audio"])
    line = describe_auto(reasons, ["audio", "visual"])
    assert "audio: 2 features, |mean| up to 17" in line and "visual on a unit scale" in line
    # a constant feature (std 0) is judged by its mean only; padding never counts
    split = _two_modalities(1.0, 0.0)
    split.features["visual"][:, :, 0] = 0.5
    split.features["visual"][2, 2:] = 1e6  # padding content
    assert off_unit_scale(split) == {}


def test_auto_is_the_default_and_true_false_keep_their_meaning() -> None:
    from mmlatch.training.config import ConfigError, TrainConfig

    assert TrainConfig().standardize == "auto"
    assert TrainConfig.from_dict({"standardize": True}).standardize is True
    with pytest.raises(ConfigError, match="auto, true or false"):
        TrainConfig.from_dict({"standardize": "yes"})


def test_auto_standardises_a_saved_run_that_evaluate_and_predict_reapply(tmp_path: Path) -> None:
    from mmlatch.data.convert import save_dataset

    # the synthetic data with audio put on a raw scale (x 300 + 50): auto standardises audio only
    data = mmlatch.data.load_dataset("synthetic", n_train=32, n_valid=16, n_test=16, max_len=8, seed=0)
    for split in data.splits.values():
        real = np.arange(split.features["audio"].shape[1])[None, :] < split.lengths["audio"][:, None]
        split.features["audio"] = np.where(real[:, :, None], split.features["audio"] * 300 + 50, 0).astype(np.float32)
    path = save_dataset(data, tmp_path / "raw.npz")
    out = tmp_path / "auto"
    args = ["train", "--data", str(path), "--model", "hctmg", "--epochs", "1", "--out", str(out), "--no-progress"]
    for item in ["model_args.hidden=8", "model_args.encoder_layers=1", "model_args.fusion_layers=1",
                 "batch_size=16", "threads=1"]:
        args += ["--set", item]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "standardize auto: standardised with training-split statistics (audio: 74 features" in res.output
    assert "text, visual on a unit scale" in res.output
    spec = json.loads((out / "model.json").read_text())
    assert list(spec["standardize"]["mean"]) == ["audio"] and list(spec["standardize_auto"]) == ["audio"]
    train_stats = fit_feature_stats(data.split("train"))
    assert np.allclose(spec["standardize"]["mean"]["audio"], train_stats.mean["audio"], rtol=1e-5)
    metrics = json.loads((out / "metrics.json").read_text())
    # evaluate and predict feed the raw file: the stored statistics make the numbers equal
    assert evaluate_run(out, device="cpu")["mae"] == pytest.approx(metrics["test"]["mae"], abs=1e-6)
    test = data.split("test")
    pred = mmlatch.load_run(out).predict(test.features, test.lengths).prediction[:, 0]
    assert np.abs(pred - test.labels[:, 0]).mean() == pytest.approx(metrics["test"]["mae"], abs=1e-5)
    model, _, _ = load_run_model(out)
    assert isinstance(model, Standardized) and model.names == ["audio"]


def test_a_model_that_cannot_use_the_modalities_refuses_in_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["train", "--data", "synthetic", "--modalities", "audio", "--model", "mctn",
                                   "--set", "data_args.n_train=16", "--set", "data_args.n_valid=8",
                                   "--set", "data_args.n_test=8", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error: model 'mctn'")
    assert "needs at least 2, got ['audio']" in lines[0]
    assert not (tmp_path / "r").exists()
