"""bfloat16 precision: chosen at run time, honoured, recorded; float32 on CPUs without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import mmlatch.training.precision as precision_mod
from mmlatch.cli.main import app
from mmlatch.models import create_model
from mmlatch.training.precision import (
    cpu_has_native_bf16,
    inference_precision,
    resolve_inference_precision,
    resolve_train_precision,
)
from tiny import tiny_settings

runner = CliRunner()
TINY = tiny_settings(n_train=32, max_len=8, threads=None)
native = pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bfloat16")


@pytest.fixture
def no_native_bf16(monkeypatch) -> None:
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: False)


@pytest.fixture
def with_native_bf16(monkeypatch) -> None:
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)


def test_auto_is_bf16_only_for_measured_models_on_a_native_cpu(with_native_bf16) -> None:
    assert resolve_inference_precision("auto", "cpu", "mmlatch") == "bf16"
    assert resolve_inference_precision("auto", "cpu", "hctmg") == "32"  # no faster in bf16: not chosen
    assert resolve_train_precision("auto", "cpu", "baseline") == "bf16-mixed"
    assert resolve_train_precision("auto", "cpu", "raven") == "32"  # not measured
    assert resolve_inference_precision("32", "cpu", "mmlatch") == "32"  # float32 one option away
    assert resolve_train_precision("32", "cpu", "mmlatch") == "32"


def test_auto_keeps_single_modality_runs_in_float32(with_native_bf16) -> None:
    # bf16 was measured on runs of two or more modalities; one modality stays float32
    assert resolve_train_precision("auto", "cpu", "baseline", n_modalities=1) == "32"
    assert resolve_inference_precision("auto", "cpu", "baseline", n_modalities=1) == "32"
    assert resolve_train_precision("auto", "cpu", "baseline", n_modalities=2) == "bf16-mixed"
    assert resolve_inference_precision("auto", "cpu", "mmlatch", n_modalities=3) == "bf16"
    # an explicit request is honoured whatever the number of modalities
    assert resolve_train_precision("bf16-mixed", "cpu", "baseline", n_modalities=1) == "bf16-mixed"


def test_a_single_modality_run_records_float32_under_auto(with_native_bf16, tmp_path) -> None:
    args = ["train", "--data", "synthetic", "--model", "baseline", "--epochs", "1", "--modalities", "text",
            "--out", str(tmp_path / "r"), "--no-progress", "--threads", "1", "--device", "cpu"]
    for item in TINY:
        args += ["--set", item]
    before = torch.get_num_threads()
    try:
        res = runner.invoke(app, args)
    finally:
        torch.set_num_threads(before)
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["precision"]["train"] == "32" and metrics["precision"]["inference"] == "32"


def test_without_native_bf16_a_request_says_so_once_and_runs_float32(no_native_bf16) -> None:
    said: list[str] = []
    assert resolve_inference_precision("bf16", "cpu", "mmlatch", said.append) == "32"
    assert resolve_train_precision("bf16-mixed", "cpu", "mmlatch", said.append) == "32"
    assert said == [
        "note: this CPU has no native bfloat16: bf16 runs in float32 instead",
        "note: this CPU has no native bfloat16: bf16-mixed runs in float32 instead",
    ]
    assert resolve_inference_precision("auto", "cpu", "mmlatch", said.append) == "32" and len(said) == 2


def test_unknown_precisions_name_the_choices() -> None:
    with pytest.raises(ValueError, match="choose one of auto, 32, bf16$"):
        resolve_inference_precision("fp8", "cpu")
    with pytest.raises(ValueError, match="16-mixed needs a CUDA device"):
        resolve_train_precision("16-mixed", "cpu")


def test_train_precision_option_sets_the_scoring_unless_told() -> None:
    from mmlatch.cli.main import _precisions

    assert _precisions("32", None) == ("32", "32")
    assert _precisions("bf16", None) == ("bf16-mixed", "bf16")
    assert _precisions("bf16-mixed", "32") == ("bf16-mixed", "32")
    assert _precisions(None, None) == (None, None)  # auto, both


def test_bf16_inference_runs_the_products_in_bf16_and_32_does_not() -> None:
    torch.manual_seed(0)
    dims = {"text": 6, "audio": 4}
    model = create_model("baseline", dims, hidden=8).eval()
    x = {k: torch.randn(2, 5, f) for k, f in dims.items()}
    lengths = torch.tensor([5, 3])
    seen = []
    with torch.inference_mode():
        for p in ("32", "bf16"):
            with inference_precision(p, "cpu"):
                seen.append(model(x, lengths).prediction.dtype)  # the head's product's dtype
    assert seen == [torch.float32, torch.bfloat16]


def _train(out: Path, *extra: str) -> tuple[dict, dict, str]:
    args = ["train", "--data", "synthetic", "--model", "mmlatch", "--epochs", "1", "--out", str(out),
            "--no-progress", "--threads", "1", "--device", "cpu"]
    for item in TINY:
        args += ["--set", item]
    res = runner.invoke(app, [*args, *extra])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    env = json.loads((out / "environment.json").read_text())
    return metrics, env, res.output


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("p") / "r32"
    before = torch.get_num_threads()
    try:
        metrics, env, _ = _train(out, "--precision", "32")  # the scoring follows: float32 throughout
    finally:
        torch.set_num_threads(before)
    assert metrics["precision"]["train"] == "32" and metrics["precision"]["inference"] == "32"
    assert env["precision"]["train"] == "32"
    return out


def test_a_cpu_without_native_bf16_trains_and_scores_in_float32_and_records_it(
    tmp_path, no_native_bf16, float32_run
) -> None:
    before = torch.get_num_threads()
    try:
        metrics, env, output = _train(tmp_path / "r", "--precision", "bf16-mixed", "--eval-precision", "bf16")
    finally:
        torch.set_num_threads(before)
    assert "no native bfloat16: bf16-mixed runs in float32" in output
    assert "no native bfloat16: bf16 runs in float32" in output
    expected = {"train": "32", "inference": "32", "cpu_native_bf16": False}
    assert metrics["precision"] == expected and env["precision"] == expected
    reference = json.loads((float32_run / "metrics.json").read_text())
    assert metrics["test"] == reference["test"]  # the same run as an explicit float32 one


@native
def test_bf16_mixed_training_and_bf16_scoring_are_recorded(tmp_path) -> None:
    before = torch.get_num_threads()
    try:
        metrics, env, _ = _train(tmp_path / "r", "--precision", "bf16")  # bf16-mixed, scored in bf16
    finally:
        torch.set_num_threads(before)
    expected = {"train": "bf16-mixed", "inference": "bf16", "cpu_native_bf16": True}
    assert metrics["precision"] == expected and env["precision"] == expected
    assert "precision: bf16-mixed" in (tmp_path / "r" / "config.yaml").read_text()


@native
def test_evaluate_and_predict_honour_the_precision(float32_run, tmp_path) -> None:
    scores = {}
    for p in ("32", "bf16"):
        res = runner.invoke(app, ["evaluate", "--run", str(float32_run), "--device", "cpu", "--precision", p])
        assert res.exit_code == 0, res.output
        scores[p] = json.loads(res.output)
    stored = json.loads((float32_run / "metrics.json").read_text())["test"]
    assert scores["32"] == stored  # the run scored itself in float32
    assert scores["bf16"]["mae"] != scores["32"]["mae"]
    assert scores["bf16"]["mae"] == pytest.approx(scores["32"]["mae"], abs=0.02)
    tables = {}
    for p in ("32", "bf16"):
        out = tmp_path / f"{p}.csv"
        res = runner.invoke(app, ["predict", "--run", str(float32_run), "--data", "synthetic", "--split", "test",
                                  "--device", "cpu", "--precision", p, "--out", str(out)])
        assert res.exit_code == 0, res.output
        tables[p] = pd.read_csv(out)
        assert set(tables[p]["precision"].astype(str)) == {p}
    diff = np.abs(tables["bf16"]["prediction"].to_numpy() - tables["32"]["prediction"].to_numpy())
    assert 0 < diff.max() < 0.05


def test_predict_without_native_bf16_says_so_and_matches_float32(float32_run, tmp_path, no_native_bf16) -> None:
    out = tmp_path / "p.csv"
    res = runner.invoke(app, ["predict", "--run", str(float32_run), "--data", "synthetic", "--split", "test",
                              "--device", "cpu", "--precision", "bf16", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "no native bfloat16: bf16 runs in float32 instead" in res.output
    table = pd.read_csv(out)
    assert set(table["precision"].astype(str)) == {"32"}
    res = runner.invoke(app, ["evaluate", "--run", str(float32_run), "--device", "cpu", "--precision", "fp8"])
    assert res.exit_code == 2 and "choose one of auto, 32, bf16" in res.output


def test_predict_with_the_onnx_engines_matches_torch_and_records_it(float32_run, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    tables = {}
    for engine, precision in (("torch", "32"), ("onnx", "onnx-32"), ("onnx-int8", "onnx-int8")):
        out = tmp_path / f"{engine}.csv"
        res = runner.invoke(app, ["predict", "--run", str(float32_run), "--data", "synthetic", "--split", "test",
                                  "--device", "cpu", "--precision", "32", "--engine", engine, "--out", str(out)])
        assert res.exit_code == 0, res.output
        tables[engine] = pd.read_csv(out)
        assert set(tables[engine]["precision"].astype(str)) == {precision}
    reference = tables["torch"]["prediction"].to_numpy()
    assert tables["onnx"]["id"].tolist() == tables["torch"]["id"].tolist()
    np.testing.assert_allclose(tables["onnx"]["prediction"].to_numpy(), reference, atol=1e-5)
    int8 = np.abs(tables["onnx-int8"]["prediction"].to_numpy() - reference)
    assert 0 < int8.max() < 0.1
    assert "mask_mean_text" in tables["torch"] and "mask_mean_text" not in tables["onnx"]  # predictions only
    res = runner.invoke(app, ["predict", "--run", str(float32_run), "--data", "synthetic", "--engine", "tvm"])
    assert res.exit_code == 2 and "choose one of torch, onnx, onnx-int8" in res.output
