"""Milliseconds per training step and per inference batch for each model.

Batch 32, length 50, MOSEI dims (text 300, audio 74, visual 35), lengths drawn from 10-50
(seeded; one sample at the full length), medians over repeated steps after warm-up, with the
optimizer training uses. CPU threads: ``--threads``, else chosen to fit the free cores like
every command (``MMLATCH_THREADS``; ``OMP_NUM_THREADS`` wins). ``--device auto`` takes CUDA
when there is one. Usage:

    python benchmarks/step_time.py [--models baseline,mmlatch] [--variants authors,paper]
                                   [--threads 2] [--device cpu|cuda|auto] [--lstm-floor]

Models with a ``variant`` option get one row per variant asked for (default: all).
``--lstm-floor`` adds what the model's LSTM kernels alone take: every ``nn.LSTM`` call of one
step replayed on its own (same modules and input shapes, gradients where the step had them),
the part of the step no change outside the LSTM kernels can remove.
The authors' columns are stored CPU figures (2 threads, this input regime), context only: a
fair comparison runs both implementations in one process (docs/guide/speed.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from mmlatch.models import MOSEI_DIMS, count_parameters, create_model, list_models, model_arguments
from mmlatch.models.latefusion import VARIANTS
from mmlatch.training.module import make_adam
from mmlatch.training.run import resolve_device
from mmlatch.training.threads import configure_threads

# The authors' released code on this 2-core machine (2 threads, same inputs), medians of the
# side-by-side runs of 2026-11-29 (train ms/step, inference ms/batch).
AUTHORS_MS = {"baseline": (540.0, 130.0), "mmlatch": (1340.0, 305.0)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _median_ms(fn: Callable[[], None], device: str, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    samples = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        _sync(device)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def _lstm_replay(model: torch.nn.Module, step: Callable[[], None], training: bool, device: str) -> Callable[[], None]:
    """Run ``step`` once recording every nn.LSTM call; return a function that replays just
    those calls (fresh inputs of the same shapes; backward through the ones with gradients)."""
    calls: list[tuple[torch.nn.LSTM, torch.Size, bool, bool]] = []
    lstms = [m for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    hooks = [
        m.register_forward_hook(
            lambda mod, inp, out: calls.append((mod, inp[0].shape, torch.is_grad_enabled(), inp[0].requires_grad))
        )
        for m in lstms
    ]
    try:
        step()
    finally:
        for h in hooks:
            h.remove()
    inputs = [(m, torch.randn(*shape, device=device, requires_grad=rg), grad) for m, shape, grad, rg in calls]

    def replay() -> None:
        if not training:
            with torch.inference_mode():
                for m, x, _ in inputs:
                    m(x)
            return
        outputs = []
        for m, x, grad in inputs:
            with torch.set_grad_enabled(grad):
                out = m(x)[0]
            if grad:
                outputs.append(out.sum())
        if outputs:
            torch.stack(outputs).sum().backward()

    return replay


def measure(
    name: str,
    device: str,
    batch: int,
    length: int,
    warmup: int,
    steps: int,
    variant: str | None = None,
    lstm_floor: bool = False,
) -> dict[str, float]:
    """train/infer ms (and train_lstm/infer_lstm with ``lstm_floor``) and params of model
    ``name`` (``variant``: None = default)."""
    torch.manual_seed(0)
    model = create_model(name, MOSEI_DIMS, variant=variant).to(device)
    opt = make_adam(model.parameters(), lr=5e-4)  # the optimizer training uses
    g = torch.Generator().manual_seed(0)
    x = {k: torch.randn(batch, length, f, generator=g).to(device) for k, f in MOSEI_DIMS.items()}
    lengths = torch.randint(max(1, length // 5), length + 1, (batch,), generator=g)
    lengths[0] = length  # the batch is as long as its longest sample
    lengths = lengths.to(device)
    y = torch.randn(batch, 1, generator=g).to(device)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.l1_loss(model(x, lengths).prediction, y)
        loss.backward()
        opt.step()

    @torch.inference_mode()
    def infer() -> None:
        model(x, lengths)

    out: dict[str, float] = {"params": float(count_parameters(model))}
    for mode, fn in (("train", train_step), ("infer", infer)):
        model.train(mode == "train")
        out[mode] = _median_ms(fn, device, warmup, steps)
        if lstm_floor and any(isinstance(m, torch.nn.LSTM) for m in model.modules()):
            out[f"{mode}_lstm"] = _median_ms(_lstm_replay(model, fn, mode == "train", device), device, warmup, steps)
    return out


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
    parser.add_argument("--lstm-floor", action="store_true", help="add the LSTM kernels' own time")
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
    floor_head = " LSTMs alone (train / infer) |" if args.lstm_floor else ""
    print(f"| model | params | train ms/step | infer ms/batch |{floor_head} authors train | authors infer |")
    print("|---|---:|---:|---:|" + ("---:|" if args.lstm_floor else "") + "---:|---:|")
    variants = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    for name in names:
        for variant in variants if "variant" in model_arguments(name) else [None]:
            r = measure(name, device, args.batch, args.length, args.warmup, args.steps, variant, args.lstm_floor)
            tr, inf = r["train"], r["infer"]
            ref = AUTHORS_MS.get(name) if device == "cpu" else None
            ref_s = f"{ref[0]:.0f} ({ref[0] / tr:.1f}x) | {ref[1]:.0f} ({ref[1] / inf:.1f}x)" if ref else "- | -"
            floor = ""
            if args.lstm_floor:
                floor = f" {r['train_lstm']:.0f} / {r['infer_lstm']:.0f} |" if "train_lstm" in r else " - |"
            label = name if variant is None else f"{name} [{variant}]"
            print(f"| {label} | {int(r['params']):,} | {tr:.1f} | {inf:.1f} |{floor} {ref_s} |", flush=True)


if __name__ == "__main__":
    main()
