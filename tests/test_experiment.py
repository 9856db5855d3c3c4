"""Experiments: results and tables, kill-and-resume, parallel/Ray equality, DDP, tuning."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmlatch.training import evaluate_run
from mmlatch.training.experiment import load_experiment, run_experiment, summary_table
from tiny import tiny_settings

ROOT = Path(__file__).resolve().parents[1]
MMLATCH = [sys.executable, "-m", "mmlatch.cli.main"]
TINY = tiny_settings(max_len=10)


def _write_exp(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "name": "tiny",
        "config": str(ROOT / "src" / "mmlatch" / "configs" / "synthetic.yaml"),
        "seeds": 3,
        "set": TINY,
        "runs": [{"name": "baseline", "model": "baseline"}, {"name": "mmlatch", "model": "mmlatch"}],
        "search": {"lr": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
                   "model_args.dropout": {"type": "categorical", "choices": [0.0, 0.2]}},
    }))
    return path


def _comparable(csv: Path) -> pd.DataFrame:
    return pd.read_csv(csv).drop(columns=["seconds"])  # wall-clock time is the one thing that differs


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """The uninterrupted experiment: 2 models x 3 seeds x 2 epochs, one process."""
    d = tmp_path_factory.mktemp("exp")
    exp_file = _write_exp(d / "exp.yaml")
    run_experiment(load_experiment(exp_file, epochs=2), d / "out", log=lambda _: None)
    return exp_file, d / "out"


def test_results_and_table_match_the_runs(reference: tuple[Path, Path]) -> None:
    _, out = reference
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 6
    assert sorted(results.columns[:4]) == ["data", "model", "name", "seed"]
    for col in ("test_mae", "test_acc7", "test_acc2", "test_f1", "test_f1_published", "test_f1_has0_neg_published",
                "test_acc2_has0_neg", "test_corr", "valid_mae", "valid_f1_published", "params", "epochs", "seconds"):
        assert col in results
    assert set(results["epochs"]) == {2}
    for _, row in results.iterrows():  # each row is its run's metrics.json
        m = json.loads((out / "runs" / row["name"] / f"seed{row['seed']}" / "metrics.json").read_text())
        assert row["test_mae"] == pytest.approx(m["test"]["mae"])
        assert str(row["precision"]) == m["precision"]["train"] and str(row["eval_precision"]) == m["precision"]["inference"]
    table = (out / "table.md").read_text()
    assert "non0" in table and "best of" in table.lower()
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")][1:]
    assert header == ["Acc7", "Acc2", "F1", "F1 (sklearn)", "MAE", "Corr"]
    for name, group in results.groupby("name"):
        line = next(l for l in table.splitlines() if l.startswith(f"| {name} (3 runs)"))
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|")[1:])))
        mae_mean, mae_std = map(float, re.findall(r"[-\d.]+", cells["MAE"]))
        acc7_mean, acc7_std = map(float, re.findall(r"[-\d.]+", cells["Acc7"]))
        f1_mean = float(re.findall(r"[-\d.]+", cells["F1"])[0])
        f1_sk_mean = float(re.findall(r"[-\d.]+", cells["F1 (sklearn)"])[0])
        assert f1_mean == pytest.approx(round(100 * group["test_f1_published"].mean(), 2), abs=1e-9)
        assert f1_sk_mean == pytest.approx(round(100 * group["test_f1"].mean(), 2), abs=1e-9)
        assert mae_mean == pytest.approx(round(group["test_mae"].mean(), 3), abs=1e-9)
        assert mae_std == pytest.approx(round(group["test_mae"].std(ddof=1), 3), abs=1e-9)
        assert acc7_mean == pytest.approx(round(100 * group["test_acc7"].mean(), 2), abs=1e-9)
        assert acc7_std == pytest.approx(round(100 * group["test_acc7"].std(ddof=1), 2), abs=1e-9)
        best = group.loc[group["test_mae"].idxmin()]
        best_line = next(l for l in table.splitlines() if l.startswith(f"| {name}, best of 3"))
        assert f"{best['test_mae']:.3f}" in best_line and f"seed {best['seed']}" in best_line
    assert "\\pm" in summary_table(results, "latex")


def test_rerun_skips_finished_runs(reference: tuple[Path, Path]) -> None:
    exp_file, out = reference
    before = (out / "results.csv").read_text()
    lines: list[str] = []
    run_experiment(load_experiment(exp_file, epochs=2), out, log=lines.append)
    assert len(lines) == 6 and all(l.startswith("skip") for l in lines)
    assert (out / "results.csv").read_text() == before


def test_killed_experiment_resumes_to_the_same_results(reference: tuple[Path, Path], tmp_path: Path) -> None:
    exp_file, ref_out = reference
    out = tmp_path / "out"
    cmd = [*MMLATCH, "experiment", "--config", str(exp_file), "--epochs", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    target = out / "runs" / "mmlatch" / "seed0"  # 4th run: killed after its first epoch
    while not (target / "checkpoints" / "last.ckpt").is_file():
        assert proc.poll() is None, "experiment ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (target / "metrics.json").is_file()
    assert len(pd.read_csv(out / "results.csv")) == 3  # the finished runs were already saved
    run_experiment(load_experiment(exp_file, epochs=2), out, log=lambda _: None)
    pd.testing.assert_frame_equal(_comparable(out / "results.csv"), _comparable(ref_out / "results.csv"))


def test_parallel_jobs_and_ray_give_the_same_results(reference: tuple[Path, Path], tmp_path: Path) -> None:
    exp_file, ref_out = reference
    run_experiment(load_experiment(exp_file, epochs=2), tmp_path / "jobs", jobs=2, log=lambda _: None)
    pd.testing.assert_frame_equal(_comparable(tmp_path / "jobs" / "results.csv"), _comparable(ref_out / "results.csv"))
    pytest.importorskip("ray", reason="the ray extra is not installed")
    run_experiment(load_experiment(exp_file, epochs=2), tmp_path / "ray", jobs=2, backend="ray", log=lambda _: None)
    pd.testing.assert_frame_equal(_comparable(tmp_path / "ray" / "results.csv"), _comparable(tmp_path / "jobs" / "results.csv"))


def test_ddp_with_two_cpu_processes(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [*MMLATCH, "train", "--model", "mmlatch", "--epochs", "2", "--out", str(out), "--no-progress",
           "--devices", "2", "--strategy", "ddp", *(x for item in TINY for x in ("--set", item))]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    # the metrics of the whole test set, as one process computes them from the same checkpoint
    assert evaluate_run(out, device="cpu") == pytest.approx(metrics["test"])


def test_tune_uses_validation_only_and_resumes(reference: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("optuna", reason="the tune extra is not installed")
    from mmlatch.training.tune import tune

    exp_file, _ = reference
    exp = load_experiment(exp_file, epochs=1, seeds=1)
    first = tune(exp, tmp_path, trials=2, log=lambda _: None)
    assert first["trials"] == 2 and first["metric"] == "valid_mae"
    assert set(first["best_params"]) == {"lr", "model_args.dropout"}
    for trial in (tmp_path / "trials").iterdir():
        assert json.loads((trial / "metrics.json").read_text())["test"] == {}  # test never scored
    again = tune(exp, tmp_path, trials=3, log=lambda _: None)  # resumes the stored study
    assert again["trials"] == 3 and len(list((tmp_path / "trials").iterdir())) == 3


@pytest.mark.parametrize("path", sorted((ROOT / "src" / "mmlatch" / "configs" / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_load(path: Path) -> None:
    exp = load_experiment(path, seeds=2)
    assert len(exp.jobs()) == 2 * len(exp.runs) and exp.search


def test_bad_experiment_files_are_clear(tmp_path: Path) -> None:
    from mmlatch.training import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("runs: []\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        load_experiment(bad)
    bad.write_text("runs: [{model: baseline}]\nbogus: 1\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_experiment(bad)
    bad.write_text("runs: [{model: baseline, set: ['nonsense=1']}]\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_experiment(bad)


def test_table_footnote_names_only_the_conventions_it_shows() -> None:
    import pandas as pd

    from mmlatch.training.experiment import summary_table

    rows = pd.DataFrame({"name": ["a", "a"], "seed": [0, 1], "test_mae": [1.0, 2.0], "test_corr": [0.1, 0.3]})
    table = summary_table(rows)
    assert "| a (2 runs) | 1.500 ± 0.707 | 0.200 ± 0.141 |" in table
    assert "non0" not in table and "Accuracies" not in table and "Best of N" in table
    rows["test_acc2"] = [0.5, 0.7]
    assert "non0 convention" in summary_table(rows)
    assert "F1:" not in summary_table(rows) and "F1 (sklearn)" not in summary_table(rows)


def test_table_f1_column_is_the_published_convention_and_carries_both() -> None:
    rows = pd.DataFrame({
        "name": ["a", "a"], "seed": [0, 1], "test_mae": [1.0, 2.0],
        "test_f1": [1 / 3, 1 / 3], "test_f1_published": [2 / 3, 2 / 3],
    })
    md = summary_table(rows)
    assert md.splitlines()[0] == "| Model | F1 | F1 (sklearn) | MAE |"
    assert "| a (2 runs) | 66.67 ± 0.00 | 33.33 ± 0.00 | 1.500 ± 0.707 |" in md
    assert 'F1: non0 convention, weighted F1 as MulT\'s and MMLatch\'s code' in md
    assert 'f1_score(pred > 0, label > 0, average="weighted")' in md
    assert 'F1 (sklearn): scikit-learn\'s weighted F1 with the labels as reference, non0 convention' in md
    assert 'f1_score(label > 0, pred > 0, average="weighted")' in md
    latex = summary_table(rows, "latex")
    assert "Model & F1 & F1 (sklearn) & MAE" in latex and "66.67 $\\pm$ 0.00 & 33.33 $\\pm$ 0.00" in latex
    assert 'f1_score(pred > 0, label > 0, average="weighted")' in latex
    csv = pd.read_csv(__import__("io").StringIO(summary_table(rows, "csv")))
    assert list(csv.columns) == ["Model", "F1", "F1 (sklearn)", "MAE"]
    assert csv.iloc[0].tolist() == ["a (2 runs)", "66.67 ± 0.00", "33.33 ± 0.00", "1.500 ± 0.707"]
    # a classification/multi-label table has only f1: labels-first F1, no non0 wording
    ml = summary_table(pd.DataFrame({"name": ["b"], "seed": [0], "test_acc": [0.5], "test_f1": [0.25]}))
    assert ml.splitlines()[0] == "| Model | F1 (sklearn) | Acc |"
    assert 'f1_score(label, pred, average="weighted")' in ml and "non0" not in ml
