"""`mmlatch demo`: both runs, the side-by-side table, the gain line and the mask heatmap
(a 1-epoch, 32-sample draw here; the real demo's figures are in the README)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from mmlatch.cli.main import app


def test_demo_prints_both_models_the_gain_and_writes_the_heatmap(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--epochs", "1", "--n-train", "32", "--threads", "1"])
    assert res.exit_code == 0, res.output
    base = json.loads((out / "baseline" / "metrics.json").read_text())["test"]
    ours = json.loads((out / "mmlatch" / "metrics.json").read_text())["test"]
    row = re.search(r"^mae\s+(\S+)\s+(\S+)$", res.output, re.M)
    assert row and float(row.group(1)) == round(base["mae"], 4) and float(row.group(2)) == round(ours["mae"], 4)
    gain = (base["mae"] - ours["mae"]) / base["mae"] * 100
    assert f"test MAE {ours['mae']:.3f} vs {base['mae']:.3f} ({abs(gain):.1f}% {'lower' if gain >= 0 else 'higher'} error" in res.output
    png = out / "mmlatch" / "analysis" / "masks_visual.png"
    assert f"mask heatmap (average mask on visual per sentiment class): {png}" in res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.with_suffix(".csv").is_file()
    assert "training baseline on synthetic data (1 epochs)" in res.output
