"""What bfloat16 does to accuracy: test MAE of float32 runs, of the same weights scored in
bf16, and of bf16-mixed training, per model and seed.

For every data set, model and seed it trains twice, short runs (``--epochs``):
``precision=32`` and ``precision=bf16-mixed``, both scored in float32; then scores the
float32 run's weights in ``bf16`` as well. It prints one markdown table:

- ``bf16 inference change``: mean over seeds of MAE(bf16 scoring) - MAE(float32 scoring) of
  the float32-trained weights, and the largest absolute change (target <= 0.005);
- ``bf16-mixed training``: mean +/- std over seeds of its test MAE beside float32's, and
  whether the means differ by no more than the larger of the two seed spreads (std).

Usage (cheap: one thread, one process per data set; runs already finished are reused):

    python benchmarks/bf16_accuracy.py --data synthetic --out /tmp/bf16acc [--threads 1]
    python benchmarks/bf16_accuracy.py --data mmmo --out /tmp/bf16acc

``--data mmmo`` is ``../shared/data/mfn/mmmo`` (or ``--mmmo PATH``) with audio and visual,
standardised. bf16 figures need a CPU with native bfloat16 (the script says when it has none).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from mmlatch.training import load_config, train
from mmlatch.training.precision import cpu_has_native_bf16
from mmlatch.training.run import evaluate_run
from mmlatch.training.threads import configure_threads

#: label -> (model, model_args)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("baseline", {}),
    "mmlatch [paper]": ("mmlatch", {"variant": "paper"}),
    "mmlatch [authors]": ("mmlatch", {"variant": "authors"}),
    "mult": ("mult", {}),
    "hctmg": ("hctmg", {}),
}
#: data set -> (data, extra settings)
DATA: dict[str, dict[str, Any]] = {
    "synthetic": {
        "data": "synthetic",
        "data_args": {"n_train": 300, "n_valid": 100, "n_test": 300, "max_len": 40, "seed": 0},
        "topdown_args": {"stage1_grad": True},
    },
    "mmmo": {"data": "../shared/data/mfn/mmmo", "modalities": ["audio", "visual"], "standardize": True},
}


def _slug(label: str) -> str:
    return label.replace(" [", "-").replace("]", "")


def run_one(data: str, label: str, seed: int, precision: str, epochs: int, out: Path, threads: int, mmmo: str) -> dict:
    model, model_args = MODELS[label]
    values: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DATA[data].items()}
    if data == "mmmo":
        values["data"] = mmmo
    values.update(model=model, model_args=dict(model_args), seed=seed, epochs=epochs, threads=threads,
                  precision=precision, eval_precision="32", progress=False, device="cpu")
    directory = out / data / _slug(label) / f"{precision}-seed{seed}"
    cfg = load_config(None, [], **values)
    metrics = train(cfg, directory, resume=True, log=lambda _: None)
    row = {"data": data, "model": label, "seed": seed, "train": precision, "mae_32": metrics["test"]["mae"]}
    row["mae_bf16"] = evaluate_run(directory, device="cpu", precision="bf16", log=lambda _: None)["mae"]
    return row


def table(rows: list[dict]) -> str:
    rows = list({(r["data"], r["model"], r["seed"], r["train"]): r for r in rows}.values())  # one per run
    lines = [
        "| data | model | float32 MAE (3 seeds) | bf16 inference change: mean / max abs | "
        "bf16-mixed training MAE | change of mean | within seed spread |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys((r["data"], r["model"]) for r in rows))
    for data, label in keys:
        f32 = [r for r in rows if (r["data"], r["model"], r["train"]) == (data, label, "32")]
        mix = [r for r in rows if (r["data"], r["model"], r["train"]) == (data, label, "bf16-mixed")]
        a = [r["mae_32"] for r in f32]
        b = [r["mae_32"] for r in mix]
        inf = [r["mae_bf16"] - r["mae_32"] for r in f32]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        row = f"| {data} | {label} | {statistics.mean(a):.4f} ± {sd(a):.4f} | {statistics.mean(inf):+.4f} / {max(map(abs, inf)):.4f} |"
        if b:
            delta = statistics.mean(b) - statistics.mean(a)
            ok = abs(delta) <= max(sd(a), sd(b))
            row += f" {statistics.mean(b):.4f} ± {sd(b):.4f} | {delta:+.4f} | {'yes' if ok else 'no'} |"
        else:
            row += " - | - | - |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic,mmmo", help="comma-separated: synthetic, mmmo")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated labels of MODELS")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: synthetic 3, mmmo 10")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/mmlatch-bf16-accuracy"))
    parser.add_argument("--mmmo", default=DATA["mmmo"]["data"])
    parser.add_argument("--table-only", action="store_true", help="print the table of the rows already in OUT")
    args = parser.parse_args()
    if not cpu_has_native_bf16():
        print("note: this CPU has no native bfloat16: bf16 would run as float32, nothing to measure")
        return
    configure_threads(args.threads)
    rows_file = args.out / "rows.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.is_file() else []
    done = {(r["data"], r["model"], r["seed"], r["train"]) for r in rows}
    datasets = args.data.split(",")
    labels = args.models.split(",")
    if not args.table_only:
        for data in datasets:
            epochs = args.epochs or (3 if data == "synthetic" else 10)
            for label in labels:
                for seed in range(args.seeds):
                    for precision in ("32", "bf16-mixed"):
                        if (data, label, seed, precision) in done:
                            continue
                        row = run_one(data, label, seed, precision, epochs, args.out, args.threads, args.mmmo)
                        rows.append(row)
                        with rows_file.open("a") as f:
                            f.write(json.dumps(row) + "\n")
                        print(json.dumps(row), flush=True)
    print(table([r for r in rows if r["data"] in datasets and r["model"] in labels]))


if __name__ == "__main__":
    main()
