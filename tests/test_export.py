"""ONNX / TorchScript export: parity with PyTorch on two batch shapes, for every registered model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from mmlatch.analysis.export import export_model, onnx_session, run_onnx
from mmlatch.cli.analysis_cmds import register
from mmlatch.models import create_model, list_models, model_arguments
from mmlatch.training import load_config, train
from tiny import tiny_settings

DIMS = {"text": 6, "audio": 5, "visual": 4}
SMALL_ARGS = {
    "hidden": 8, "heads": 2, "layers": 1, "encoder_layers": 1, "fusion_layers": 1,
    "audio_hidden": 4, "visual_hidden": 4, "text_out": 4, "post_fusion_dim": 8,
}
#: models that step through time in Python: a trace would freeze the number of steps, so
#: they refuse to export (test_recurrent_memory_models_refuse_export)
NO_EXPORT = ("mfn", "graph-mfn")
TINY = tiny_settings(["progress=false", "modalities=[audio,visual]"], n_train=32, max_len=10)
runner = CliRunner()
app = typer.Typer()
register(app)


def _small(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    args = {k: v for k, v in SMALL_ARGS.items() if k in model_arguments(name)}
    return create_model(name, DIMS, **args).eval()


def _batch(batch: int, length: int, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[-1] = length
    real = (torch.arange(length)[None, :] < lengths[:, None]).unsqueeze(2)  # (B, L, 1)
    return {m: torch.randn(batch, length, f, generator=g) * real for m, f in DIMS.items()}, lengths


def _need_onnx() -> None:
    for module in ("onnx", "onnxruntime"):
        pytest.importorskip(module, reason=f"{module} not installed (pip install 'mmlatch[export]')")


def _exported(fmt: str, path: Path):
    if fmt == "torchscript":
        module = torch.jit.load(str(path))
        return lambda x, ln: module(*x.values(), ln).numpy()
    session = onnx_session(path)
    return lambda x, ln: run_onnx(session, [*DIMS, "lengths"], (*x.values(), ln))


#: ONNX for one model per family (the top-down variants add only LSTM/sigmoid ops, which
#: mmlatch covers; their tracing is covered by TorchScript); TorchScript for every model
ONNX_MODELS = ("baseline", "mmlatch", "mult", "hctmg")
CASES = [(name, "torchscript") for name in list_models() if name not in NO_EXPORT] + [
    (name, "onnx") for name in list_models() if name in ONNX_MODELS or name not in NO_EXPORT + (
        "mmlatch-linear", "mult-mmlatch", "hctmg-mmlatch", "raven-mmlatch", "routing-mmlatch")  # a newly registered model gets both
]


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_export_matches_pytorch_on_two_batch_shapes(name: str, fmt: str, tmp_path: Path) -> None:
    if fmt == "onnx":
        _need_onnx()
    model = _small(name)
    path = tmp_path / f"model.{fmt}"
    export_model(model, DIMS, fmt, path, verify=False)  # checked here, independently
    run = _exported(fmt, path)
    for batch, length, seed in ((2, 9, 10), (4, 5, 11)):
        x, lengths = _batch(batch, length, seed)
        with torch.no_grad():
            expected = model(x, lengths).prediction.numpy()
            got = run(x, lengths)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", NO_EXPORT)
def test_recurrent_memory_models_refuse_export(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{name} does not export"):
        export_model(_small(name), DIMS, "torchscript", tmp_path / "m.pt", verify=False)


def test_unaligned_export_takes_lengths_per_modality(tmp_path: Path) -> None:
    _need_onnx()
    model = _small("hctmg")
    info = export_model(model, DIMS, "onnx", tmp_path / "m.onnx", per_modality_lengths=True)
    assert [i["name"] for i in info["inputs"]] == [*DIMS, "lengths_text", "lengths_audio", "lengths_visual"]
    session = onnx_session(tmp_path / "m.onnx")
    g = torch.Generator().manual_seed(3)
    x = {m: torch.randn(3, 4 + 3 * i, f, generator=g) for i, (m, f) in enumerate(DIMS.items())}
    ln = {m: torch.tensor([v.size(1), 2, 1]) for m, v in x.items()}
    got = run_onnx(session, info_names := [i["name"] for i in info["inputs"]], (*x.values(), *ln.values()))
    assert len(info_names) == 6
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x, ln).prediction.numpy(), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="word-aligned"):
        export_model(_small("baseline"), DIMS, "onnx", tmp_path / "b.onnx", per_modality_lengths=True)


def test_checks_still_run_outside_export() -> None:
    model = _small("mmlatch")
    x, lengths = _batch(2, 5, 0)
    with pytest.raises(ValueError, match="lengths must lie in"):
        model(x, lengths + 10)
    x["audio"][0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN/inf"):
        model(x, lengths)


def test_cli_export_of_a_trained_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(load_config(None, TINY, data="synthetic", model="mmlatch", epochs=1, seed=0), run)
    has_onnx = importlib.util.find_spec("onnx") is not None
    for fmt in ("torchscript", "onnx") if has_onnx else ("torchscript",):
        out = tmp_path / f"model.{fmt}"
        res = runner.invoke(app, ["export", "--run", str(run), "--format", fmt, "--out", str(out)])
        assert res.exit_code == 0, res.output
        printed = json.loads(res.output)
        assert printed == json.loads(Path(str(out) + ".json").read_text())
        assert printed["model"] == "mmlatch" and printed["modality_dims"] == {"audio": 74, "visual": 35}
        assert printed["verified"] is True or "skipped" in printed["verified"]
        if printed["verified"] is True:  # the export's own check: two shapes within 1e-5
            assert len(printed["max_abs_diff"]) == 2 and max(printed["max_abs_diff"].values()) <= 1e-5
    res = runner.invoke(app, ["export", "--run", str(run), "--format", "tflite", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "unknown export format" in res.output
