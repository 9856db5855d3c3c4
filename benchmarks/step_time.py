"""Milliseconds per training step and per inference batch for each model.

Batch 32, length 50, MOSEI dims (text 300, audio 74, visual 35), medians over repeated steps
(after warm-up). CPU threads: ``--threads``, else chosen to fit the free cores like every
command (``MMLATCH_THREADS``; ``OMP_NUM_THREADS`` wins). ``--device auto`` takes CUDA when
there is one. Usage:

    python benchmarks/step_time.py [--models baseline,mmlatch] [--variants authors,paper]
                                   [--threads 2] [--device cpu|cuda|auto]

Models with a ``variant`` option get one row per variant asked for (default: all).
The authors' columns are stored CPU figures (2 threads), shown as context only, and only on CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmlatch.models import MOSEI_DIMS, count_parameters, create_model, list_models, model_arguments
from mmlatch.models.latefusion import VARIANTS
from mmlatch.training.module import make_adam
from mmlatch.training.run import resolve_device
from mmlatch.training.threads import configure_threads

# Reference: the authors' implementation on this 2-core machine (2 threads), from the issue.
AUTHORS_MS = {"baseline": (200.0, 37.0), "mmlatch": (514.0, 95.0)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(
    name: str, device: str, batch: int, length: int, warmup: int, steps: int, variant: str | None = None
) -> tuple[float, float, int]:
    """(train ms, inference ms, parameters) for model ``name`` (``variant``: None = default)."""
    torch.manual_seed(0)
    model = create_model(name, MOSEI_DIMS, variant=variant).to(device)
    opt = make_adam(model.parameters(), lr=5e-4)  # the optimizer training uses
    x = {k: torch.randn(batch, length, f, device=device) for k, f in MOSEI_DIMS.items()}
    lengths = torch.full((batch,), length, device=device)
    lengths[batch // 2 :] = length * 3 // 4  # mixed lengths, as in real batches
    y = torch.randn(batch, 1, device=device)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(model(x, lengths).prediction, y)
        loss.backward()
        opt.step()

    @torch.inference_mode()
    def infer() -> None:
        model(x, lengths)

    times = {}
    for mode, fn in (("train", train_step), ("infer", infer)):
        model.train(mode == "train")
        for _ in range(warmup):
            fn()
        _sync(device)
        samples = []
        for _ in range(steps):
            t = time.perf_counter()
            fn()
            _sync(device)
            samples.append(time.perf_counter() - t)
        times[mode] = statistics.median(samples) * 1000
    return times["train"], times["infer"], count_parameters(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="all", help="comma-separated names, or all")
    parser.add_argument("--variants", default="all", help="comma-separated variants, or all")
    parser.add_argument("--threads", type=int, default=None, help="default: fit the free cores")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except RuntimeError as exc:
        parser.error(str(exc))
    threads = configure_threads(args.threads)
    names = list_models() if args.models == "all" else args.models.split(",")
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {', '.join(list_models())}")
    where = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"{threads.threads} threads ({threads.source})"
    print(f"device {device}, {where}, batch {args.batch}, length {args.length}, dims {MOSEI_DIMS}")
    print(f"| model | params | train ms/step | infer ms/batch | authors train | authors infer |")
    print(f"|---|---:|---:|---:|---:|---:|")
    variants = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    for name in names:
        for variant in variants if "variant" in model_arguments(name) else [None]:
            tr, inf, params = measure(name, device, args.batch, args.length, args.warmup, args.steps, variant)
            ref = AUTHORS_MS.get(name) if device == "cpu" else None
            ref_s = f"{ref[0]:.0f} ({ref[0] / tr:.1f}x) | {ref[1]:.0f} ({ref[1] / inf:.1f}x)" if ref else "- | -"
            label = name if variant is None else f"{name} [{variant}]"
            print(f"| {label} | {params:,} | {tr:.1f} | {inf:.1f} | {ref_s} |", flush=True)


if __name__ == "__main__":
    main()
