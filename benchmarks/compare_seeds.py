"""Multi-seed comparison of models on the synthetic default (or any data), with a constant
predictor (the train-label mean) as the floor to beat.

Trains every model for every seed with the given config and prints mean +/- std of the
test metrics. Finished runs in --out are reused. Usage:

    python benchmarks/compare_seeds.py [--models baseline,mmlatch] [--seeds 0,1,2]
        [--config src/mmlatch/configs/synthetic.yaml] [--epochs N] [--out runs/bench-synthetic]
    python benchmarks/compare_seeds.py --config src/mmlatch/configs/mosei/mmlatch.yaml \
        --data ../shared/data/mfn/mmmo --modalities audio,visual --out runs/bench-mmmo
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mmlatch.metrics import compute_metrics
from mmlatch.training import load_config, train
from mmlatch.training.run import load_data

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "src" / "mmlatch" / "configs" / "synthetic.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="baseline,mmlatch")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--data", default=None, help="replace the config's data")
    parser.add_argument("--modalities", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default="runs/bench-synthetic")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {}
    for name in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            run = Path(args.out) / name / f"seed{seed}"
            if (run / "metrics.json").is_file():
                res = json.loads((run / "metrics.json").read_text())
            else:
                cfg = load_config(
                    args.config, args.overrides, model=name, seed=seed, epochs=args.epochs,
                    threads=args.threads, progress=False, data=args.data,
                    modalities=args.modalities.split(",") if args.modalities else None,
                )
                res = train(cfg, run)
            results.setdefault(name, []).append(res)
            print(f"{name} seed {seed}: test mae {res['test']['mae']:.4f} (best epoch {res['best_epoch']}/{res['epochs_run']})", flush=True)
    # the constant predictor: every test sample gets the mean train label
    cfg = load_config(args.config, args.overrides, data=args.data,
                      modalities=args.modalities.split(",") if args.modalities else None)
    ds = load_data(cfg)
    mean = ds.split("train").labels.mean(axis=0, keepdims=True)
    test_labels = ds.split("test").labels
    const = compute_metrics(ds.task, np.repeat(mean, len(test_labels), axis=0), test_labels)
    results["constant (train mean)"] = [{"test": const}]
    metrics = list(next(iter(results.values()))[0]["test"])
    print()
    print("| model | " + " | ".join(metrics) + " |")
    print("|---|" + "---:|" * len(metrics))
    for name, runs in results.items():
        cells = []
        for m in metrics:
            vals = np.array([r["test"][m] if r["test"][m] is not None else np.nan for r in runs], dtype=float)
            cells.append(f"{np.mean(vals):.4f} +/- {np.std(vals):.4f}")
        print(f"| {name} (n={len(runs)}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
