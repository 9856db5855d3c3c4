"""MOSI text only: GloVe-6B-50d vs all-MiniLM-L6-v2 word features, 5 seeds each.

MOSI's real transcripts and labels (``../shared/data/mosi/label.csv``, standard folds) are
extracted twice with ``mmlatch extract`` (``--embeddings glove-6b-50d`` and
``all-minilm-l6-v2``; files reused when present), then each text model of the registry is
trained per seed with the command-line defaults (``mmlatch train --data F --modalities text
--model M --seed S``). Beside them: the constant predictor (train-label median) and a ridge
regression on mean-pooled MiniLM vectors of each clip (alpha chosen on the valid split), the
linear line the contextual features must beat. The top-down models (mmlatch, ...), MulT
and HCT-MG need two or more modalities by construction, so ``baseline`` is the text model
of the MMLatch family. Usage:

    OMP_NUM_THREADS=1 python benchmarks/mosi_text.py [--seeds 1,2,3,4,5] [--models baseline]
        [--out runs/bench-mosi-text] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mmlatch.data import load_dataset
from mmlatch.extract.build import extract_dataset
from mmlatch.metrics import compute_metrics
from mmlatch.training import load_config, train

LABELS = Path(__file__).resolve().parents[2] / "shared" / "data" / "mosi" / "label.csv"
SHOWN = ("mae", "corr", "acc2", "f1", "acc7")


def _features(out: Path, embedding: str) -> Path:
    path = out / f"mosi_{embedding}.npz"
    if not path.is_file():
        extract_dataset(LABELS, path, embedding=embedding, progress=False)
    return path


def _ridge(path: Path) -> dict[str, float]:
    """Mean of each clip's word vectors -> ridge; alpha by valid MAE; test metrics."""
    from sklearn.linear_model import Ridge

    ds = load_dataset(str(path))

    def pooled(split: str) -> tuple[np.ndarray, np.ndarray]:
        s = ds.splits[split]
        x = np.stack([s.features["text"][i, : s.lengths["text"][i]].mean(0) for i in range(len(s))])
        return x, s.labels[:, 0]

    (xtr, ytr), (xva, yva), (xte, yte) = pooled("train"), pooled("valid"), pooled("test")
    best = min((np.abs(Ridge(alpha=a).fit(xtr, ytr).predict(xva) - yva).mean(), a) for a in (0.1, 1, 3, 10, 30, 100))
    pred = Ridge(alpha=best[1]).fit(xtr, ytr).predict(xte)
    return compute_metrics(ds.task, pred[:, None], yte[:, None])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--models", default="baseline")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default="runs/bench-mosi-text")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, float]]] = {}
    files = {e: _features(out, e) for e in ("glove-6b-50d", "all-minilm-l6-v2")}
    ds = load_dataset(str(files["glove-6b-50d"]))
    train_labels, test_labels = ds.splits["train"].labels, ds.splits["test"].labels
    const = np.repeat(np.median(train_labels, axis=0, keepdims=True), len(test_labels), axis=0)
    rows["constant (train median)"] = [compute_metrics(ds.task, const, test_labels)]
    rows["all-MiniLM-L6-v2 mean-pooled -> ridge"] = [_ridge(files["all-minilm-l6-v2"])]
    for emb, path in files.items():
        for model in args.models.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                run = out / f"{emb}-{model}-seed{seed}"
                if (run / "metrics.json").is_file():
                    res = json.loads((run / "metrics.json").read_text())
                else:
                    cfg = load_config(None, args.overrides, model=model, seed=seed, data=str(path), modalities=["text"],
                                      threads=args.threads, progress=False)
                    res = train(cfg, run)
                rows.setdefault(f"{emb} -> {model}", []).append(res["test"])
                print(f"{emb} {model} seed {seed}: " + ", ".join(f"{k} {res['test'][k]:.4f}" for k in SHOWN), flush=True)
    print("\n| text features -> model | runs | " + " | ".join(f"test {k}" for k in SHOWN) + " |")
    print("|---|---|" + "---|" * len(SHOWN))
    for name, results in rows.items():
        cells = []
        for k in SHOWN:
            v = np.array([r[k] for r in results], float) * (100 if k.startswith(("acc", "f1")) else 1)
            cells.append(f"{v.mean():.3f} +/- {v.std():.3f}" if len(v) > 1 else f"{v[0]:.3f}")
        print(f"| {name} | {len(results)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
