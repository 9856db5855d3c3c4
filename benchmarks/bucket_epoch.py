"""Length-bucketed batches (``batching: bucket``) against the default random order: padding,
epoch time on MOSEI-size data, and test MAE over seeds.

Epoch time. MOSEI's training split (16,326 segments) with a realistic length distribution:
the word counts of CMU-MOSI's 2,199 transcripts (``../shared/data/mosi/label.csv``, the
closest real distribution on this machine), resampled to 16,326 and capped at 50 words as
MMLatch's MOSEI pipeline does. Both orders of one epoch are built by the samplers training
uses (batch 32); the padding of every batch is counted exactly. The time is the mean of
``--batches`` training steps (random features of each batch's shape and lengths, MOSEI dims,
the model's default training precision), taken from each order's batches at random and
interleaved (one shuffle batch, one bucket batch, ...) so the machine's load falls on both,
times the batches per epoch.

Test MAE (``--mae``): short runs of ``--model`` on the built-in synthetic data (a small draw:
``--n-train``, lengths uniform in 8-50) over ``--seeds`` seeds, with each order.

    python benchmarks/bucket_epoch.py [--model mmlatch] [--batches 30] [--threads 1] [--mae --seeds 3]
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mmlatch.data.batching import BucketBatchSampler, EpochShuffleSampler
from mmlatch.models import MOSEI_DIMS, create_model
from mmlatch.training.module import make_adam
from mmlatch.training.precision import resolve_train_precision
from mmlatch.training.threads import configure_threads

MOSEI_TRAIN = 16_326
MOSI_LABELS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mosi" / "label.csv"


def realistic_lengths(n: int, seed: int = 0, path: Path = MOSI_LABELS, cap: int = 50) -> tuple[np.ndarray, str]:
    """(n,) segment lengths in words: MOSI transcripts' word counts resampled (else a
    log-normal of median 15 words), capped at ``cap``; and where they came from."""
    rng = np.random.default_rng(seed)
    if path.is_file():
        with path.open(newline="") as f:
            counts = np.array([max(1, len(row["text"].split())) for row in csv.DictReader(f)])
        return np.minimum(rng.choice(counts, size=n), cap), f"MOSI transcripts ({len(counts)} segments)"
    return np.clip(rng.lognormal(np.log(15), 0.7, size=n).astype(int), 1, cap), "log-normal (median 15)"


def epoch_batches(lengths: np.ndarray, batch: int, order: str, seed: int = 0) -> list[list[int]]:
    if order == "bucket":
        sampler = BucketBatchSampler(lengths, batch, seed)
        sampler.set_epoch(0)
        return list(sampler)
    idx = list(EpochShuffleSampler(len(lengths), seed))
    return [idx[i : i + batch] for i in range(0, len(idx), batch)]


def time_epochs(model_name: str, lengths: np.ndarray, batch: int, n_batches: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    model = create_model(model_name, MOSEI_DIMS).train()
    opt = make_adam(model.parameters(), lr=5e-4)
    precision = resolve_train_precision("auto", "cpu", model_name)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    g = torch.Generator().manual_seed(0)

    def step(idx: list[int]) -> float:
        ln = torch.as_tensor(lengths[idx])
        x = {k: torch.randn(len(idx), int(ln.max()), f, generator=g) for k, f in MOSEI_DIMS.items()}
        y = torch.randn(len(idx), 1, generator=g)
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast:
            pred = model(x, ln).prediction
        torch.nn.functional.l1_loss(pred.float(), y).backward()
        opt.step()
        return time.perf_counter() - t

    orders = {o: epoch_batches(lengths, batch, o) for o in ("shuffle", "bucket")}
    rnd = random.Random(0)
    picks = {o: rnd.sample(b, min(n_batches, len(b))) for o, b in orders.items()}
    for o in orders:  # warm-up
        step(picks[o][0])
    times: dict[str, list[float]] = {o: [] for o in orders}
    for i in range(n_batches):
        for o in orders:
            times[o].append(step(picks[o][i % len(picks[o])]))
    out = {}
    for o, batches in orders.items():
        real = sum(len(b) for b in batches) * 1.0
        padded = sum(len(b) * lengths[b].max() for b in batches)
        out[o] = {
            "batches": len(batches),
            "padding": 1 - lengths.sum() / padded,
            "step_ms": statistics.mean(times[o]) * 1000,
            "epoch_s": statistics.mean(times[o]) * len(batches),
            "samples": real,
        }
    out["precision"] = {"train": precision}  # type: ignore[assignment]
    return out


def test_mae(model: str, seeds: int, epochs: int, n_train: int, out: Path) -> dict[str, list[float]]:
    from mmlatch.training import load_config, train

    result: dict[str, list[float]] = {"shuffle": [], "bucket": []}
    for seed in range(seeds):
        for order in result:
            values = dict(
                data="synthetic", model=model, seed=seed, epochs=epochs, progress=False, device="cpu",
                data_args={"n_train": n_train, "n_valid": n_train // 4, "n_test": 300, "seed": 0},
                topdown_args={"stage1_grad": True}, batching=order,
            )
            metrics = train(load_config(None, [], **values), out / f"{order}-seed{seed}", resume=True, log=lambda _: None)
            result[order].append(metrics["test"]["mae"])
            print(f"{order} seed {seed}: test MAE {metrics['test']['mae']:.4f}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mmlatch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=30, help="timed steps per order")
    parser.add_argument("--threads", type=int, default=None, help="default: fit the free cores")
    parser.add_argument("--mae", action="store_true", help="also train on synthetic data with each order")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--out", type=Path, default=Path("/tmp/mmlatch-bucket"))
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    lengths, source = realistic_lengths(MOSEI_TRAIN)
    print(f"{args.model}, {threads.threads} thread(s), MOSEI-size training split ({MOSEI_TRAIN:,}), lengths from {source}: "
          f"mean {lengths.mean():.1f}, median {np.median(lengths):.0f}, max {lengths.max()}")
    r = time_epochs(args.model, lengths, args.batch, args.batches)
    print(f"training precision: {r.pop('precision')['train']}")  # type: ignore[index]
    print("| order | batches | padding | mean step ms | epoch s (estimated) |")
    print("|---|---:|---:|---:|---:|")
    for o, v in r.items():
        print(f"| {o} | {v['batches']} | {v['padding']:.1%} | {v['step_ms']:.1f} | {v['epoch_s']:.0f} |")
    print(f"bucket / shuffle epoch time: {r['bucket']['epoch_s'] / r['shuffle']['epoch_s']:.2f}", flush=True)
    if args.mae:
        maes = test_mae(args.model, args.seeds, args.epochs, args.n_train, args.out)
        print("| order | test MAE per seed | mean ± std |")
        print("|---|---|---|")
        for o, v in maes.items():
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            print(f"| {o} | {', '.join(f'{m:.4f}' for m in v)} | {statistics.mean(v):.4f} ± {sd:.4f} |")


if __name__ == "__main__":
    main()
