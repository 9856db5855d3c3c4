"""Mask heatmaps, gates, incongruity and training curves on tiny trained runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from matplotlib.image import imread
from typer.testing import CliRunner

from mmlatch.analysis.incongruity import incongruent_mask
from mmlatch.analysis.masks import SENTIMENT_CLASSES, label_classes
from mmlatch.cli.analysis_cmds import register
from mmlatch.data import TaskSpec
from mmlatch.training import load_config, train
from mmlatch.training.run import load_data, load_run_model
from tiny import tiny_settings

TINY = tiny_settings(["progress=false"], n_test=24)
runner = CliRunner()
app = typer.Typer()
register(app)


def _train(out: Path, model: str, epochs: int = 2) -> Path:
    train(load_config(None, TINY, data="synthetic", model=model, epochs=epochs, seed=0), out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {m: _train(root / m, m, epochs=3 if m == "hctmg" else 2) for m in ("mmlatch", "hctmg")}


def _invoke(*args: str) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_sentiment_classes_round_half_to_even_after_clipping() -> None:
    y = np.array([-3.4, -2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.4, 3.0, 7.0])
    idx, names = label_classes(y[:, None], TaskSpec())
    assert names == list(SENTIMENT_CLASSES) == ["neg++", "neg+", "neg", "neu", "pos", "pos+", "pos++"]
    assert [names[i] for i in idx] == ["neg++", "neg+", "neg+", "neu", "neu", "neu", "pos+", "pos+", "pos++", "pos++"]


def test_other_regression_labels_bin_by_rounded_value() -> None:
    mmmo = TaskSpec("regression", 1, ("sentiment",), (1.0, 5.0))
    idx, names = label_classes(np.array([[1.0], [1.4], [2.5], [4.6], [5.0]]), mmmo)
    assert names == ["1", "2", "3", "4", "5"]
    assert idx.tolist() == [0, 0, 1, 4, 4]


def test_mask_csv_equals_masks_averaged_by_hand(runs: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "fig" / "masks.png"
    printed = json.loads(_invoke("analyze", "masks", "--run", runs["mmlatch"], "--modality", "audio", "--out", png))
    _assert_png(png)
    table = pd.read_csv(png.with_suffix(".csv"), index_col="feature")
    assert list(table.columns) == list(SENTIMENT_CLASSES)

    # by hand: every test sample alone (no padding at all), mask averaged over its steps
    model, _, cfg = load_run_model(runs["mmlatch"])
    test = load_data(cfg).split("test")
    assert list(table.index) == load_data(cfg).feature_names["audio"]
    per_class: dict[int, list[np.ndarray]] = {}
    with torch.no_grad():
        for i in range(len(test)):
            n = int(test.lengths["audio"][i])
            x = {m: torch.from_numpy(test.features[m][i : i + 1, :n]) for m in test.features}
            mask = model(x).masks["audio"][0]  # (n, F)
            c = int(np.round(np.clip(test.labels[i, 0], -3, 3))) + 3
            per_class.setdefault(c, []).append(mask.mean(dim=0).numpy())
    for c, name in enumerate(SENTIMENT_CLASSES):
        if c in per_class:
            expected = np.mean(per_class[c], axis=0)
            np.testing.assert_allclose(table[name].to_numpy(), expected, rtol=0, atol=1e-5)
            assert printed["counts"][name] == len(per_class[c])
        else:  # an empty class is empty, not 0
            assert table[name].isna().all() and printed["counts"][name] == 0


def test_mask_analysis_needs_a_top_down_model(runs: dict[str, Path], tmp_path: Path) -> None:
    res = runner.invoke(app, ["analyze", "masks", "--run", str(runs["hctmg"]), "--out", str(tmp_path / "m.png")])
    assert res.exit_code == 2 and "returns no masks" in res.output and "Traceback" not in res.output


def test_gates_plot_the_logged_weights_and_primary(runs: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "gates.png"
    printed = json.loads(_invoke("analyze", "gates", "--run", runs["hctmg"], "--out", png))
    _assert_png(png)
    table = pd.read_csv(png.with_suffix(".csv"))
    rows = list(csv.DictReader((runs["hctmg"] / "log" / "metrics.csv").open()))
    names = ["text", "audio", "visual"]
    assert table["epoch"].tolist() == [int(r["epoch"]) for r in rows] == [1, 2, 3]  # both count from 1
    for m in names:
        np.testing.assert_allclose(table[f"gate_{m}"], [float(r[f"gate_{m}"]) for r in rows])
    assert table["primary"].tolist() == [names[int(float(r["primary"]))] for r in rows]
    assert printed["primary"] == {str(e): p for e, p in zip(table["epoch"], table["primary"])}
    res = runner.invoke(app, ["analyze", "gates", "--run", str(runs["mmlatch"]), "--out", str(tmp_path / "g.png")])
    assert res.exit_code == 2 and "logged no gate weights" in res.output


def test_incongruent_mask_by_hand() -> None:
    unimodal = np.array([[0.5, 1.0, 2.0], [-0.5, 1.0, 2.0], [-1.0, -2.0, -0.1], [0.0, -0.0, 1.0], [0.0, -0.1, 1.0]])
    assert incongruent_mask(unimodal[:, :, None], 0.0).tolist() == [False, True, False, False, True]
    assert incongruent_mask(unimodal, 0.75).tolist() == [True, True, False, True, True]


def test_incongruity_table_by_hand(runs: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "inc.png"
    _invoke("analyze", "incongruity", "--run", runs["hctmg"], "--run", runs["mmlatch"],
            "--reference", runs["hctmg"], "--out", png)
    _assert_png(png)
    table = pd.read_csv(png.with_suffix(".csv"))
    assert table["group"].tolist() == ["congruent", "incongruent", "all"] * 2

    model, _, cfg = load_run_model(runs["hctmg"])
    test = load_data(cfg).split("test")
    with torch.no_grad():
        feats = {m: torch.from_numpy(v) for m, v in test.features.items()}
        out = model(feats, {m: torch.from_numpy(v) for m, v in test.lengths.items()})
    uni = out.extras["unimodal"][:, :, 0].numpy()
    incongruent = (uni >= 0).any(axis=1) & ~(uni >= 0).all(axis=1)
    err = np.abs(out.prediction[:, 0].numpy() - test.labels[:, 0])
    hct = table[table["run"] == "hctmg"].set_index("group")
    assert hct.loc["incongruent", "n"] == incongruent.sum() and hct.loc["all", "n"] == len(test)
    for group, sel in (("congruent", ~incongruent), ("incongruent", incongruent)):
        if sel.any():
            assert hct.loc[group, "mae"] == pytest.approx(err[sel].mean(), abs=1e-5)
        else:
            assert np.isnan(hct.loc[group, "mae"])
    mml = table[table["run"] == "mmlatch"].set_index("group")
    assert mml["n"].tolist() == hct["n"].tolist()  # grouped by the reference


def test_incongruity_without_unimodal_predictions_is_a_clear_error(runs: dict[str, Path]) -> None:
    res = runner.invoke(app, ["analyze", "incongruity", "--run", str(runs["mmlatch"])])
    assert res.exit_code == 2 and "no unimodal predictions" in res.output and "--reference" in res.output


def test_curves_overlay_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "curves.png"
    _invoke("analyze", "curves", "--run", runs["mmlatch"], "--run", runs["hctmg"], "--out", png)
    _assert_png(png)
    table = pd.read_csv(png.with_suffix(".csv"))
    assert list(table.columns) == ["run", "epoch", "train_loss", "val_loss", "val_mae"]
    for name, path in runs.items():
        rows = list(csv.DictReader((path / "log" / "metrics.csv").open()))
        part = table[table["run"] == name]
        np.testing.assert_allclose(part["val_mae"], [float(r["val_mae"]) for r in rows])
        np.testing.assert_allclose(part["train_loss"], [float(r["train_loss"]) for r in rows])
    res = runner.invoke(app, ["analyze", "curves", "--run", str(runs["mmlatch"]), "--metric", "nope"])
    assert res.exit_code == 2 and "logged no val_nope" in res.output
