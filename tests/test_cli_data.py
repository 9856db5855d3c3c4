"""The data commands and training on real and converted data, through the CLI."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from mmlatch.cli.main import app

runner = CliRunner()


def _mult_pickle(path: Path, n: int = 24, length: int = 6) -> Path:
    rng = np.random.default_rng(0)
    data = {}
    for split in ("train", "valid", "test"):
        x = {k: rng.normal(size=(n, length, f)).astype(np.float32) for k, f in (("text", 5), ("audio", 4), ("vision", 3))}
        for i in range(n):  # front padding, as MulT stores it
            pad = i % 3
            for v in x.values():
                v[i, :pad] = 0
        x["audio"][0, -1, 0] = -np.inf  # the field's known dirt
        data[split] = {**x, "labels": rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32),
                       "id": np.array([[f"v{i}".encode(), b"0", b"1"] for i in range(n)])}
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)
    return path


def test_inspect_reports_format_sizes_and_nonfinite(tmp_path: Path) -> None:
    pkl = _mult_pickle(tmp_path / "mosi_data.pkl")
    res = runner.invoke(app, ["data", "inspect", str(pkl), "--json"])
    assert res.exit_code == 0, res.output
    desc = json.loads(res.output[res.output.index("{"):])
    assert desc["format"] == "mult"
    assert {k: v["size"] for k, v in desc["splits"].items()} == {"train": 24, "valid": 24, "test": 24}
    assert desc["feature_dims"] == {"text": 5, "audio": 4, "visual": 3}
    assert desc["nonfinite_total"] == 3  # one -inf per split
    res = runner.invoke(app, ["data", "inspect", str(pkl), "--on-nonfinite", "error"])
    assert res.exit_code == 2
    assert "split 'train', modality 'audio': 1 non-finite feature values" in res.output


def test_convert_then_train_on_the_converted_file(tmp_path: Path) -> None:
    pkl = _mult_pickle(tmp_path / "mosi_data.pkl")
    out = tmp_path / "mosi.npz"
    res = runner.invoke(app, ["data", "convert", str(pkl), "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "--data", str(out), "--model", "mmlatch", "--epochs", "1", "--out",
                              str(tmp_path / "run"), "--no-progress", "--set", "model_args.hidden=8", "--set", "threads=1"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"] == str(out) and "acc7" in metrics["test"]
    res = runner.invoke(app, ["evaluate", "--run", str(tmp_path / "run")])
    assert json.loads(res.output) == metrics["test"]


def test_train_on_real_mmmo_audio_visual(shared_data: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "--data", str(shared_data / "mfn" / "mmmo"), "--modalities", "audio,visual",
                              "--model", "mmlatch", "--epochs", "1", "--out", str(tmp_path / "r"), "--no-progress",
                              "--set", "model_args.hidden=16", "--set", "threads=1"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert set(metrics["test"]) == {"mae", "corr"}  # 1-5 sentiment: not the [-3, 3] metrics
    spec = json.loads((tmp_path / "r" / "model.json").read_text())
    assert spec["modality_dims"] == {"audio": 74, "visual": 36}


def test_unknown_modality_and_format_are_clear_errors(tmp_path: Path) -> None:
    pkl = _mult_pickle(tmp_path / "mosi_data.pkl")
    res = runner.invoke(app, ["data", "inspect", str(pkl), "--modalities", "audio,smell"])
    assert res.exit_code == 2 and "smell" in res.output
    res = runner.invoke(app, ["data", "inspect", str(pkl), "--format", "xml"])
    assert res.exit_code == 2 and "unknown data format 'xml'" in res.output
