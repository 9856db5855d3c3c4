"""Test-time corruption: what each corruption does, level 0 = plain evaluation, finite outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from matplotlib.image import imread
from typer.testing import CliRunner

from mmlatch.analysis.robustness import corrupt_split, feature_std, normalised_auc, robustness_table
from mmlatch.cli.analysis_cmds import register
from mmlatch.data import Split
from mmlatch.models import create_model, list_models, model_arguments
from mmlatch.training import evaluate_run, load_config, train
from tiny import tiny_settings

TINY = tiny_settings(["progress=false"], n_test=24)
SMALL_ARGS = {"hidden": 8, "heads": 2, "layers": 1, "encoder_layers": 1, "fusion_layers": 1}
DIMS = {"text": 6, "audio": 5, "visual": 4}
runner = CliRunner()
app = typer.Typer()
register(app)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for model in ("baseline", "mmlatch"):
        train(load_config(None, TINY, data="synthetic", model=model, epochs=2, seed=0), root / model)
        out[model] = root / model
    return out


def _split(n: int = 40, length: int = 9, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, length + 1, n)
    lengths[0] = length
    real = np.arange(length)[None, :] < lengths[:, None]
    feats = {m: (rng.normal(2.0, 3.0, (n, length, f)) * real[:, :, None]).astype(np.float32) for m, f in DIMS.items()}
    return Split(feats, {m: lengths.copy() for m in DIMS}, np.zeros((n, 1), np.float32), [str(i) for i in range(n)])


def test_level_zero_is_the_clean_split() -> None:
    s = _split()
    for c in ("noise", "drop", "missing"):
        assert corrupt_split(s, c, 0.0, ["audio"], np.random.default_rng(0), {"audio": np.ones(5)}) is s


def test_noise_is_scaled_by_the_train_std_on_real_steps_only() -> None:
    s = _split(n=400)
    std = feature_std(s, "audio")
    real = np.arange(9)[None, :] < s.lengths["audio"][:, None]
    np.testing.assert_allclose(std, s.features["audio"][real].std(axis=0), rtol=1e-6)
    out = corrupt_split(s, "noise", 0.5, ["audio"], np.random.default_rng(1), {"audio": std})
    delta = out.features["audio"] - s.features["audio"]
    assert (delta[~real] == 0).all()  # padding stays zero
    np.testing.assert_allclose(delta[real].std(axis=0), 0.5 * std, rtol=0.05)
    assert out.features["text"] is s.features["text"] and out.lengths is s.lengths
    again = corrupt_split(s, "noise", 0.5, ["audio"], np.random.default_rng(1), {"audio": std})
    assert (again.features["audio"] == out.features["audio"]).all()  # seeded


def test_drop_zeroes_steps_and_keeps_lengths() -> None:
    s = _split(n=400)
    out = corrupt_split(s, "drop", 0.3, ["text", "visual"], np.random.default_rng(0))
    real = np.arange(9)[None, :] < s.lengths["text"][:, None]
    for m in ("text", "visual"):
        zero = (out.features[m] == 0).all(axis=2)
        kept = ~zero & real
        assert zero[real].mean() == pytest.approx(0.3, abs=0.03)
        assert (out.features[m][kept] == s.features[m][kept]).all()
    assert out.features["audio"] is s.features["audio"]
    assert all((out.lengths[m] == s.lengths[m]).all() for m in DIMS)


def test_missing_zeroes_a_fraction_of_samples() -> None:
    s = _split(n=40)
    out = corrupt_split(s, "missing", 0.25, ["visual"], np.random.default_rng(0))
    gone = (out.features["visual"] == 0).all(axis=(1, 2))
    assert gone.sum() == 10
    assert (out.features["visual"][~gone] == s.features["visual"][~gone]).all()
    assert (out.lengths["visual"] == s.lengths["visual"]).all()


def test_normalised_auc_by_hand() -> None:
    assert normalised_auc([0.0, 0.5, 1.0], [1.0, 2.0, 4.0]) == pytest.approx((0.75 + 1.5) / 1.0)
    assert normalised_auc([0.0, 0.1, 0.3], [1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert normalised_auc([0.0], [3.0]) == 3.0


@pytest.mark.parametrize("name", list_models())
def test_an_all_zero_modality_gives_finite_predictions(name: str) -> None:
    torch.manual_seed(0)
    args = {k: v for k, v in SMALL_ARGS.items() if k in model_arguments(name)}
    model = create_model(name, DIMS, **args).eval()
    s = _split(n=4)
    lengths = torch.from_numpy(s.lengths["text"])
    for zeroed in [*DIMS, "all"]:
        x = {m: torch.from_numpy(v) for m, v in s.features.items()}
        for m in DIMS if zeroed == "all" else [zeroed]:
            x[m] = torch.zeros_like(x[m])
        with torch.no_grad():
            out = model(x, lengths)
        assert torch.isfinite(out.prediction).all(), (name, zeroed)
        for mask in (out.masks or {}).values():
            assert torch.isfinite(mask).all()


def test_level_zero_equals_plain_evaluation(runs: dict[str, Path]) -> None:
    table = robustness_table(list(runs.values()), levels=[0.0, 1.0], modality="all")
    for name, path in runs.items():
        expected = evaluate_run(path, device="cpu")
        for c in ("noise", "drop", "missing"):
            row = table[(table["run"] == name) & (table["corruption"] == c) & (table["level"] == 0.0)].iloc[0]
            assert {k: row[k] for k in expected} == expected  # exactly
        full = table[(table["run"] == name) & (table["level"] == 1.0)]
        assert np.isfinite(full["mae"]).all()  # every modality of every sample zeroed: still finite


def test_cli_writes_csv_png_json_with_auc(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "rob"
    args = ["robustness", "--run", str(runs["baseline"]), "--run", str(runs["mmlatch"]), "--out", str(out),
            "--modality", "audio", "--levels", "0,0.3,0.6,0.9", "--corruption", "noise,missing", "--seed", "3"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output)
    assert json.loads((out / "robustness.json").read_text()) == printed
    image = imread(out / "robustness.png")
    assert image.ndim == 3 and image.shape[0] > 100
    table = pd.read_csv(out / "robustness.csv")
    assert len(table) == 2 * 2 * 4 and set(table["modality"]) == {"audio"}
    for name in runs:
        for c in ("noise", "missing"):
            part = table[(table["run"] == name) & (table["corruption"] == c)]
            assert printed["runs"][name]["auc"][c] == pytest.approx(normalised_auc(part["level"], part["mae"]))
    again = runner.invoke(app, args)  # seeded: the same numbers again
    assert json.loads(again.output) == printed
    bad = runner.invoke(app, [*args[:7], "--modality", "smell"])
    assert bad.exit_code == 2 and "no modality 'smell'" in bad.output
