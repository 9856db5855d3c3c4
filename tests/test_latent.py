"""Latent incongruity (mmlatch analyze incongruity --latent): the hooked representations, the
flip bookkeeping and the CLI output, on tiny trained HCT-MG and MulT runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from mmlatch.analysis.collect import load_run_data
from mmlatch.analysis.latent import crossmodal_paths, pooled_paths
from mmlatch.cli.analysis_cmds import register
from mmlatch.models import create_model
from mmlatch.modules.transformer import masked_mean
from mmlatch.training import load_config, train
from tiny import tiny_settings

TINY = tiny_settings(["progress=false", "standardize=true"], n_test=24, max_len=10)
runner = CliRunner()
app = typer.Typer()
register(app)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("latent")
    extra = {"hctmg": ["model_args.encoder_layers=1", "model_args.fusion_layers=1"],
             "mult": ["model_args.layers=1"]}
    out = {}
    for m in ("hctmg", "mult"):
        train(load_config(None, TINY + extra[m], data="synthetic", model=m, epochs=1, seed=0), root / m)
        out[m] = root / m
    return out


def test_paths_of_hctmg_follow_the_evaluation_primary_and_mult_has_every_pair() -> None:
    dims = {"text": 6, "audio": 5, "visual": 4}
    hct = create_model("hctmg", dims, hidden=8, encoder_layers=1, fusion_layers=1)
    hct.gate_ema.copy_(torch.tensor([0.2, 0.5, 0.3]))
    [(target, sources, before, after)] = crossmodal_paths(hct.train())
    assert (target, sources) == ("audio", "visual+text") and before is hct.encoders["audio"] and after is hct.stages[-1]
    assert hct.training  # the mode is restored
    fixed = create_model("hctmg", dims, hidden=8, encoder_layers=1, fusion_layers=1, primary="text")
    assert crossmodal_paths(fixed)[0][0] == "text"
    mult = create_model("mult", dims, hidden=8, layers=1)
    assert sorted((t, s) for t, s, _, _ in crossmodal_paths(mult)) == sorted(
        (t, s) for t in dims for s in dims if s != t
    )


def test_hooked_before_is_the_primary_encoder_output(runs: dict[str, Path]) -> None:
    run = load_run_data(runs["hctmg"])
    got = pooled_paths(run, "test")
    target = got["paths"][0][0]
    test = run.dataset.split("test")
    inner = run.model.inner  # behind the standardisation
    with torch.no_grad():
        feats = run.model.standardize({k: torch.from_numpy(v) for k, v in test.features.items()},
                                      {k: torch.from_numpy(v) for k, v in test.lengths.items()})
        lens = torch.from_numpy(test.lengths[target])
        by_hand = masked_mean(inner.encoders[target](feats[target], lens), lens).numpy()
    np.testing.assert_allclose(got["paths"][0][2], by_hand, atol=1e-5)
    assert got["ids"] == list(test.ids)


def test_cli_latent_table_and_flip_bookkeeping(runs: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "inc.png"
    res = runner.invoke(app, ["analyze", "incongruity", "--run", str(runs["hctmg"]), "--run", str(runs["mult"]),
                              "--reference", str(runs["hctmg"]), "--out", str(png), "--latent"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output)
    latent_png = Path(printed["latent"]["png"])
    assert latent_png == tmp_path / "inc_latent.png" and latent_png.stat().st_size > 1000
    table = pd.read_csv(latent_png.with_suffix(".csv"))
    assert len(table[table["run"] == "hctmg"]) == 3 and len(table[table["run"] == "mult"]) == 6 * 3
    for _, part in table.groupby(["run", "target", "sources"]):
        part = part.set_index("group")
        assert part.loc["congruent", "n"] + part.loc["incongruent", "n"] == part.loc["all", "n"] == 24
    # a reading that changes side is right either before or after, never both
    np.testing.assert_allclose(table["flip"], table["harmful"] + table["helpful"], atol=1e-9, equal_nan=True)
    # accuracy column of the plain incongruity table
    inc = pd.read_csv(png.with_suffix(".csv"))
    assert ((inc["acc"] >= 0) & (inc["acc"] <= 1)).all()


def test_latent_needs_crossmodal_models(runs: dict[str, Path], tmp_path: Path) -> None:
    base = tmp_path / "b"
    train(load_config(None, TINY, data="synthetic", model="baseline", epochs=1, seed=0), base)
    res = runner.invoke(app, ["analyze", "incongruity", "--run", str(base), "--reference", str(runs["hctmg"]),
                              "--latent", "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "no crossmodal attention paths" in res.output and "Traceback" not in res.output
