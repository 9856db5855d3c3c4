"""Do the defaults learn on real features? Every registered model on ICT-MMMO audio+visual.

Runs ``mmlatch train --data DATA --modalities audio,visual --model M --seed S`` (no other
option: the defaults a new user gets) for every model of ``mmlatch models`` and the seeds
asked for, once per ``standardize`` setting asked for (``--set standardize=...``; ``default``
passes nothing), each in its own process with ``--threads 1``, ``--jobs`` at a time. Prints a
markdown table: model x setting -> mean test MAE and corr over the seeds (and the bar:
MAE <= 1.20, corr >= 0.30). A model that refuses the modalities shows its one-line answer.
Finished runs in ``--out`` (a ``metrics.json`` there) are reused as they are. Usage:

    python benchmarks/defaults_mmmo.py [--data ../shared/data/mfn/mmmo] [--seeds 1,2,3]
        [--standardize default,false] [--models baseline,hctmg] [--jobs 2] [--out /tmp/defaults_mmmo]
        [--config configs/mosei/hctmg.yaml ...]

``--config`` adds rows for config files (the same command with ``--config FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _models() -> list[str]:
    from mmlatch.models import list_models

    return list_models()


def _one(job: tuple[str, str, int, str], data: str, out: Path) -> tuple[tuple[str, str, int, str], dict | str]:
    label, setting, seed, kind = job
    run = out / f"{label.replace('/', '_')}-{setting}-{seed}"
    cmd = [sys.executable, "-m", "mmlatch", "train", "--data", data, "--modalities", "audio,visual",
           "--seed", str(seed), "--threads", "1", "--no-progress", "--out", str(run)]
    cmd += ["--config", label] if kind == "config" else ["--model", label]
    if setting != "default":
        cmd += ["--set", f"standardize={setting}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if not (run / "metrics.json").is_file():  # a finished run is read, not re-checked by a new process
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    else:
        res = subprocess.CompletedProcess(cmd, 0)
    if res.returncode != 0:
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("error:")] or res.stderr.strip().splitlines()
        return job, lines[-1] if lines else f"failed (exit {res.returncode})"
    metrics = json.loads((run / "metrics.json").read_text())
    timing = json.loads((run / "timing.json").read_text()) if (run / "timing.json").is_file() else {}
    return job, {"mae": metrics["test"]["mae"], "corr": metrics["test"]["corr"],
                 "epochs": metrics["epochs_run"], "seconds": timing.get("seconds")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/mfn/mmmo")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--standardize", default="default,false", help="settings: default (nothing passed), auto, true, false")
    p.add_argument("--models", default=None, help="comma-separated (default: every registered model; '' none)")
    p.add_argument("--config", action="append", default=[], help="also rows for this config file")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="/tmp/defaults_mmmo")
    a = p.parse_args()
    models = [m for m in a.models.split(",") if m] if a.models is not None else _models()
    seeds = [int(s) for s in a.seeds.split(",")]
    settings = a.standardize.split(",")
    rows = [(m, "model") for m in models] + [(c, "config") for c in a.config]
    jobs = [(label, s, seed, kind) for s in settings for label, kind in rows for seed in seeds]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str], list] = {}
    with ThreadPoolExecutor(a.jobs) as pool:
        for job, res in pool.map(lambda j: _one(j, a.data, out), jobs):
            results.setdefault((job[0], job[1]), []).append(res)
            print(f"{job[0]} standardize={job[1]} seed {job[2]}: {res}", file=sys.stderr, flush=True)

    print(f"\nMMMO audio+visual, test, mean over seeds {a.seeds} (bar: MAE <= 1.20, corr >= 0.30)\n")
    print("| model | " + " | ".join(f"standardize={s} MAE / corr" for s in settings) + " |")
    print("|---|" + "---|" * len(settings))
    for label, _ in rows:
        cells = []
        for s in settings:
            res = results[(label, s)]
            if any(isinstance(r, str) for r in res):
                cells.append(next(r for r in res if isinstance(r, str)))
                continue
            mae = statistics.mean(r["mae"] for r in res)
            corr = statistics.mean(r["corr"] if r["corr"] is not None else 0.0 for r in res)
            ok = "" if mae <= 1.20 and corr >= 0.30 else " (below the bar)"
            cells.append(f"{mae:.3f} / {corr:.3f}{ok}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
