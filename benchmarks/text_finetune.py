"""MISA / Self-MM / MMIM with the text encoder frozen vs fine-tuned, on data that carries words.

Per model (``configs/zoo/<model>.yaml``, MMSA 2.2.1's MOSI settings) and seed, one run per
text mode, interleaved so that each seed's modes share the machine's load:

- ``frozen``: the dataset's per-word all-MiniLM-L6-v2 vectors, their mean (the default);
- ``in-model-frozen``: the packaged MiniLM inside the model on the raw text, ``text_lr=0``
  (the same pooling as ``finetune``, no gradients: isolates what the fine-tuning adds);
- ``finetune``: the same, trained at the config's ``text_lr``.

Prints one JSON line per run (test MAE / corr, best epoch, epochs run, seconds per epoch
with validation) and a markdown table of the means. The data: ``benchmarks/planted_words.py``.

    python benchmarks/planted_words.py --out /tmp/words/planted_words.pkl
    python benchmarks/text_finetune.py --data /tmp/words/planted_words.pkl --out /tmp/words/runs --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "frozen": ["model_args.text_encoder=frozen"],
    "in-model-frozen": ["model_args.text_encoder=finetune", "model_args.text_lr=0"],
    "finetune": ["model_args.text_encoder=finetune"],
}


def run(model: str, mode: str, seed: int, data: str, out: Path, epochs: int, patience: int, extra: list[str]) -> dict:
    """One training run (``extra``: more ``--set`` overrides); its test metrics and seconds per epoch."""
    from mmlatch.training import load_config, train

    overrides = [*MODES[mode], f"epochs={epochs}", f"patience={patience}", f"seed={seed}", "threads=1", "progress=false"]
    cfg = load_config(str(ROOT / "configs" / "zoo" / f"{model}.yaml"), [*overrides, *extra], data=data)
    folder = out / f"{model}-{mode}-{seed}"
    metrics = train(cfg, folder, log=lambda _: None)
    seconds = json.loads((folder / "timing.json").read_text())["seconds"]
    return {
        "model": model, "mode": mode, "seed": seed, "test_mae": metrics["test"]["mae"],
        "test_corr": metrics["test"]["corr"], "best_epoch": metrics["best_epoch"],
        "epochs": metrics["epochs_run"], "s_per_epoch": seconds / max(metrics["epochs_run"], 1),
    }


def table(rows: list[dict]) -> str:
    """Markdown: per model and mode, the means over seeds."""
    lines = ["| model | mode | seeds | test MAE (per seed) | mean MAE | mean corr | s/epoch |", "|---|---|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        for mode in MODES:
            rs = [r for r in rows if r["model"] == model and r["mode"] == mode]
            if rs:
                maes = " / ".join(f"{r['test_mae']:.3f}" for r in rs)
                lines.append(
                    f"| `{model}` | {mode} | {len(rs)} | {maes} | {np.mean([r['test_mae'] for r in rs]):.3f} | "
                    f"{np.mean([r['test_corr'] for r in rs]):.3f} | {np.mean([r['s_per_epoch'] for r in rs]):.1f} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["misa", "self-mm", "mmim"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--set", dest="extra", action="append", default=[], help="another override, e.g. model_args.text_pooling=mean")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        for model in args.models:
            for mode in args.modes:
                rows.append(run(model, mode, seed, args.data, args.out, args.epochs, args.patience, args.extra))
                print(json.dumps(rows[-1]), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
