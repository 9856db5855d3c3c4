"""A file format added from outside the package: one reader, one ``@register_reader``, then
every command reads it (detected by content, or by ``--format``): read -> train -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmlatch.cli.main import app
from mmlatch.data import DataError, MultimodalDataset, Split, load_dataset
from mmlatch.data.readers.registry import register_reader, unregister_reader

DIMS = {"text": 4, "audio": 3, "visual": 2}
SIZES = {"train": 24, "valid": 8, "test": 8}
MAGIC = '{"toy-format"'
runner = CliRunner()


def read_toy(path: Path, *, on_nonfinite: str = "zero", scale: float = 1.0) -> MultimodalDataset:
    """A JSON file: ``{"toy-format": 1, "splits": {split: {modality: (N, L, F), "lengths": (N,), "labels": (N,)}}}``."""
    doc = json.loads(path.read_text())
    splits = {}
    for name, part in doc["splits"].items():
        lengths = np.asarray(part["lengths"], np.int64)
        features = {m: scale * np.asarray(part[m], np.float32) for m in DIMS}
        labels = np.asarray(part["labels"], np.float32).reshape(-1, 1)
        splits[name] = Split(features, {m: lengths.copy() for m in DIMS}, labels, [f"{name}{i}" for i in range(len(lengths))])
    return MultimodalDataset(name=path.stem, splits=splits, source=f"toy:{path}")


def _is_toy(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[: len(MAGIC)].decode(errors="replace") == MAGIC


@pytest.fixture()
def toy_format():
    register_reader("toy", detect=_is_toy, options=("scale",))(read_toy)
    yield "toy"
    unregister_reader("toy")


def _write_toy(path: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    doc: dict = {"toy-format": 1, "splits": {}}
    for name, n in SIZES.items():
        lengths = rng.integers(2, 6, size=n)
        part = {"lengths": lengths.tolist()}
        for m, f in DIMS.items():
            x = rng.normal(size=(n, 5, f)).round(3)
            x[np.arange(5)[None, :] >= lengths[:, None]] = 0.0  # end padding
            part[m] = x.tolist()
        part["labels"] = np.clip(3 * np.tanh(np.asarray(part["text"])[:, 0, 0]), -3, 3).round(3).tolist()
        doc["splits"][name] = part
    path.write_text(json.dumps(doc))
    return doc


def test_a_registered_format_is_detected_by_content(tmp_path: Path, toy_format: str) -> None:
    doc = _write_toy(tmp_path / "clips.data")  # no telling suffix: found by its first bytes
    ds = load_dataset(str(tmp_path / "clips.data"))
    assert ds.source.startswith("toy:") and ds.modality_dims == DIMS
    np.testing.assert_array_equal(ds.split("valid").features["audio"], np.asarray(doc["splits"]["valid"]["audio"], np.float32))
    np.testing.assert_array_equal(ds.split("test").lengths["text"], doc["splits"]["test"]["lengths"])
    scaled = load_dataset(str(tmp_path / "clips.data"), format="toy", scale=2.0)  # by name, with its option
    np.testing.assert_allclose(scaled.split("train").features["text"], 2 * ds.split("train").features["text"])
    with pytest.raises(DataError, match=r"reader option\(s\) \['max_len'\] not understood for 'toy' data"):
        load_dataset(str(tmp_path / "clips.data"), max_len=3)


def test_a_registered_format_trains_and_evaluates_end_to_end(tmp_path: Path, toy_format: str) -> None:
    data = tmp_path / "clips.data"
    _write_toy(data)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--model", "baseline", "--epochs", "1", "--seed", "0", "--out", str(run),
            "--threads", "1", "--set", "model_args.hidden=8", "--set", "batch_size=8"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"] == str(data) and metrics["epochs_run"] == 1
    res = runner.invoke(app, ["evaluate", "--run", str(run), "--split", "test", "--threads", "1"])
    assert res.exit_code == 0, res.output
    scored = json.loads(res.output[res.output.index("{"):])
    assert scored["mae"] == pytest.approx(metrics["test"]["mae"], abs=1e-6)  # the run's data re-read by the toy reader


def test_registering_a_taken_name_is_refused(toy_format: str) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_reader("toy")(read_toy)
    with pytest.raises(ValueError, match="registered twice"):
        register_reader("csd")(read_toy)


def test_without_registration_the_file_is_unknown(tmp_path: Path) -> None:
    _write_toy(tmp_path / "clips.data")
    with pytest.raises(DataError, match="unknown data format"):
        load_dataset(str(tmp_path / "clips.data"))
