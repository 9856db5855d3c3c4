"""Per-model training defaults: a registered model's own ``lr``, ``batch_size``, ... apply where
a run does not set them; a config, ``--set`` and options win; the run records them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mmlatch.cli.main import app
from mmlatch.models import registry
from mmlatch.models.mult import MULT_TRAINING
from mmlatch.training import TrainConfig, load_config
from mmlatch.training.config import MODEL_DEFAULT_KEYS, ConfigError
from tiny import tiny_settings

GENERIC = TrainConfig()
MULT = {"batch_size": 24, "lr": 1e-3, "grad_clip": 0.8, "lr_factor": 0.1, "lr_patience": 20}


def _settings(cfg: TrainConfig) -> dict:
    return {k: getattr(cfg, k) for k in MODEL_DEFAULT_KEYS}


def test_mult_and_mult_mmlatch_get_mults_training_defaults_when_unset() -> None:
    assert MULT_TRAINING == MULT
    for name in ("mult", "mult-mmlatch"):  # the top-down variant inherits its backbone's
        cfg = load_config(None, [], model=name)
        assert _settings(cfg) == {**_settings(GENERIC), **MULT}, name
        assert (cfg.epochs, cfg.patience) == (GENERIC.epochs, GENERIC.patience)  # not declared: generic


def test_a_model_without_declared_defaults_keeps_the_generic_ones() -> None:
    for name in ("mmlatch", "baseline", "hctmg", "hctmg-mmlatch", "tfn"):
        assert registry.get_entry(name).training == {}, name
        assert _settings(load_config(None, [], model=name)) == _settings(GENERIC), name
    assert (GENERIC.lr, GENERIC.batch_size, GENERIC.lr_patience, GENERIC.grad_clip) == (5e-4, 32, 2, None)


def test_explicit_values_win_over_the_models_defaults(tmp_path: Path) -> None:
    cfg = load_config(None, ["lr=0.002", "grad_clip=null", "batch_size=8"], model="mult")
    assert (cfg.lr, cfg.grad_clip, cfg.batch_size) == (0.002, None, 8)
    assert (cfg.lr_factor, cfg.lr_patience) == (0.1, 20)  # the rest stay the model's
    path = tmp_path / "c.yaml"
    path.write_text("model: mult\nlr: 0.0003\nlr_patience: 2\n")
    cfg = load_config(path, [])
    assert (cfg.lr, cfg.lr_patience, cfg.batch_size, cfg.grad_clip) == (0.0003, 2, 24, 0.8)
    assert cfg.model_defaults == ("batch_size", "grad_clip", "lr_factor")  # what came from the model
    cfg = load_config(path, ["lr=0.004"], model="baseline")  # the CLI's model: generic defaults
    assert (cfg.lr, cfg.lr_patience, cfg.batch_size, cfg.grad_clip) == (0.004, 2, 32, None)
    # a shipped config that states every value keeps them
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "mosei" / "mult.yaml", [])
    assert (cfg.lr, cfg.batch_size, cfg.grad_clip, cfg.lr_factor, cfg.lr_patience) == (1e-3, 16, 1.0, 0.1, 20)
    assert cfg.model_defaults == ()  # lr 1e-3 etc. equal mult's, but the config states them
    assert "model_defaults" not in cfg.to_dict()  # a record, not a setting: config.yaml does not hold it


def test_a_registered_models_declared_defaults_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    base = registry.get_entry("baseline")
    entry = registry.ModelEntry("tmp-model", base.builder, "x", base.arguments, training={"lr": 0.01, "seed": 3})
    monkeypatch.setitem(registry._REGISTRY, "tmp-model", entry)
    with pytest.raises(ConfigError, match=r"'tmp-model' declares training defaults \['seed'\]"):
        load_config(None, [], model="tmp-model")
    entry = registry.ModelEntry("tmp-model", base.builder, "x", base.arguments, training={"epochs": 7})
    monkeypatch.setitem(registry._REGISTRY, "tmp-model", entry)
    assert load_config(None, [], model="tmp-model").epochs == 7
    assert load_config(None, [], model="tmp-model", epochs=3).epochs == 3


def test_a_run_records_the_models_defaults_it_used(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["train", "--data", "synthetic", "--model", "mult", "--epochs", "1", "--out", str(out), "--no-progress"]
    for item in tiny_settings(batch_size=None, n_train=24, n_valid=8, n_test=8, max_len=8, extra=["lr=0.002"]):
        args += ["--set", item]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    used = {k: v for k, v in MULT.items() if k != "lr"}
    assert "training defaults of mult: batch_size 24, grad_clip 0.8, lr_factor 0.1, lr_patience 20" in res.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert {k: cfg[k] for k in MULT} == {**used, "lr": 0.002}
    spec = json.loads((out / "model.json").read_text())
    assert spec["training_defaults"] == used
