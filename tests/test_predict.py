"""Prediction with a finished run: the Python API and files without labels."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import mmlatch
from mmlatch.analysis.predict import load_run
from mmlatch.cli.analysis_cmds import register
from mmlatch.data.convert import save_dataset
from mmlatch.training import evaluate_run, load_config, train
from mmlatch.training.run import load_data, load_run_model, predict_split
from tiny import tiny_settings

TINY = tiny_settings(["data_args.min_len=3", "progress=false"], n_test=24)
runner = CliRunner()
app = typer.Typer()
register(app)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "mmlatch"
    train(load_config(None, TINY, data="synthetic", model="mmlatch", epochs=2, seed=0), out)
    return out


@pytest.fixture(scope="module")
def expected(run: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The test-split predictions, labels and ids that ``evaluate`` scores."""
    model, _, cfg = load_run_model(run)
    return predict_split(model, load_data(cfg), "test")


def _predict_cli(run: Path, data: Path, *extra: str) -> pd.DataFrame:
    out = data.with_suffix(".preds.csv")
    args = ["predict", "--run", str(run), "--data", str(data), "--out", str(out), "--precision", "32", *extra]
    res = runner.invoke(app, args)  # float32: compared with predict_split's float32 outputs
    assert res.exit_code == 0, res.output
    return pd.read_csv(out, dtype={"id": str})


def _check_test_rows(table: pd.DataFrame, expected: tuple, split: str = "test") -> None:
    pred, _, ids = expected
    rows = table[table["split"] == split]
    assert rows["id"].tolist() == ids
    np.testing.assert_allclose(rows["prediction"].to_numpy(), pred[:, 0], rtol=0, atol=1e-6)
    masks = rows[["mask_mean_text", "mask_mean_audio", "mask_mean_visual"]].to_numpy()
    assert ((masks > 0) & (masks < 1)).all()


def test_predict_on_labelled_data_matches_evaluate(run: Path, expected: tuple, tmp_path: Path) -> None:
    _, _, cfg = load_run_model(run)
    path = save_dataset(load_data(cfg), tmp_path / "data.npz")
    table = _predict_cli(run, path)
    assert list(table.columns) == [
        "split", "id", "prediction", "label", "mask_mean_text", "mask_mean_audio", "mask_mean_visual", "precision"
    ]
    assert set(table["precision"].astype(str)) == {"32"}
    assert table["split"].unique().tolist() == ["train", "valid", "test"]
    _check_test_rows(table, expected)
    test = table[table["split"] == "test"]
    from mmlatch.data import TaskSpec
    from mmlatch.metrics import compute_metrics

    metrics = compute_metrics(TaskSpec(), test[["prediction"]].to_numpy(), test[["label"]].to_numpy())
    reference = evaluate_run(run, device="cpu", precision="32")
    assert metrics == pytest.approx(reference, rel=1e-6)


def test_predict_on_files_without_labels_matches_evaluate(run: Path, expected: tuple, tmp_path: Path) -> None:
    _, _, cfg = load_run_model(run)
    ds = load_data(cfg)
    test = ds.split("test")

    # 1. the own format with the label entries left out
    labelled = save_dataset(ds, tmp_path / "labelled.npz")
    with np.load(labelled, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files if not k.endswith("/labels")}
    own = tmp_path / "own_unlabelled.npz"
    np.savez(own, **entries)
    assert "test/labels.npy" not in zipfile.ZipFile(own).namelist()
    table = _predict_cli(run, own)
    assert "label" not in table.columns and set(table["split"]) == {"train", "valid", "test"}
    _check_test_rows(table, expected)

    # 2. a MulT pickle (front padding, 'vision', (N, 3) ids) without 'labels'
    def front_padded(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x)
        for i, n in enumerate(lengths):
            out[i, x.shape[1] - n:] = x[i, :n]
        return out

    part = {key: front_padded(test.features[m], test.lengths[m]) for key, m in
            (("text", "text"), ("audio", "audio"), ("vision", "visual"))}
    part["id"] = np.array([[i, "0", "1"] for i in test.ids])
    mult = tmp_path / "mult_unlabelled.pkl"
    mult.write_bytes(pickle.dumps({"test": part}))
    table = _predict_cli(run, mult)
    assert table["id"].str.endswith("[0,1]").all()
    table["id"] = table["id"].str.removesuffix("[0,1]")
    _check_test_rows(table, expected)

    # 3. a plain .npz of arrays with lengths and ids (split "data")
    plain = tmp_path / "plain.npz"
    np.savez(plain, **test.features, lengths=test.lengths["text"], ids=np.array(test.ids))
    table = _predict_cli(run, plain)
    _check_test_rows(table, expected, split="data")

    # 4. the same without lengths: found from the zero padding
    np.savez(plain, **test.features)
    table = _predict_cli(run, plain)
    np.testing.assert_allclose(table["prediction"], expected[0][:, 0], rtol=0, atol=1e-6)


def test_predict_prints_csv_and_reports_bad_files(run: Path, tmp_path: Path) -> None:
    _, _, cfg = load_run_model(run)
    test = load_data(cfg).split("test")
    plain = tmp_path / "p.npz"
    np.savez(plain, text=test.features["text"], audio=test.features["audio"])
    res = runner.invoke(app, ["predict", "--run", str(run), "--data", str(plain)])
    assert res.exit_code == 2 and "no features for modality ['visual']" in res.output
    np.savez(plain, **test.features)
    res = runner.invoke(app, ["predict", "--run", str(run), "--data", str(plain)])
    assert res.exit_code == 0 and res.output.splitlines()[0].startswith("split,id,prediction")
    assert len(res.output.splitlines()) == 1 + len(test)


def test_load_run_predicts_one_sample_or_a_batch(run: Path, expected: tuple) -> None:
    _, _, cfg = load_run_model(run)
    test = load_data(cfg).split("test")
    predictor = load_run(run, precision="32")  # compared with float32 predict_split
    assert predictor.modalities == ["text", "audio", "visual"]
    batch = predictor.predict(test.features, test.lengths["text"])
    np.testing.assert_allclose(batch.prediction, expected[0], rtol=0, atol=1e-6)
    assert set(batch.mask_means) == {"text", "audio", "visual"} and batch.mask_means["audio"].shape == (len(test),)
    n = int(test.lengths["text"][3])
    one = predictor.predict({m: x[3, :n] for m, x in test.features.items()})  # (L, F), every step real
    assert one.prediction.shape == (1,)
    assert one.prediction[0] == pytest.approx(float(expected[0][3, 0]), abs=1e-5)
    assert isinstance(one.mask_means["visual"], float)
    with pytest.raises(ValueError, match="missing \\['visual'\\]"):
        predictor.predict({m: test.features[m] for m in ("text", "audio")})
    with pytest.raises(ValueError, match="lengths must lie in"):
        predictor.predict(test.features, np.full(len(test), 99))


def test_mmlatch_load_run_is_the_package_api(run: Path) -> None:
    assert mmlatch.load_run is load_run  # wired by a lazy __getattr__ in mmlatch/__init__.py
    assert json.loads((run / "model.json").read_text())["model"] == mmlatch.load_run(run).spec["model"]
