"""Share of a training epoch spent outside the model's forward and backward.

Builds the synthetic dataset at MOSEI size (16,326 training samples, 50 steps, 300/74/35
features), trains one epoch with the project's Lightning module and loaders, and splits the
epoch's wall time (first batch fetched to last batch done; validation excluded) into:

- forward: ``training_step`` (model forward and loss);
- backward: ``loss.backward()``;
- optimizer: the Adam update (and gradient clipping);
- data: fetching a batch (sampler, collation into padded tensors, transfer to the device);
- other: the rest (Lightning's loop, hooks, logging).

Usage (``--limit-batches`` times that many batches of the epoch; the data are still MOSEI-size):

    python benchmarks/epoch_overhead.py [--model baseline] [--threads N] [--limit-batches 100]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="baseline")
    parser.add_argument("--n-train", type=int, default=16326, help="training samples (MOSEI: 16,326)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="default: fit the free cores")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit-batches", type=int, default=None, help="time only this many batches")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="model_args override key=value")
    args = parser.parse_args()

    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from mmlatch.data.batching import make_loader
    from mmlatch.data.synthetic import make_synthetic
    from mmlatch.models import create_model
    from mmlatch.training.module import TaskModule
    from mmlatch.training.run import _quiet_lightning
    from mmlatch.training.threads import configure_threads

    choice = configure_threads(args.threads)
    t0 = time.perf_counter()
    data = make_synthetic(n_train=args.n_train, n_valid=64, n_test=32, max_len=50)
    print(f"data: {args.n_train} training samples built in {time.perf_counter() - t0:.1f} s; "
          f"{choice.threads} threads ({choice.source}), device {args.device}", flush=True)
    model_args = {k: eval(v, {}) for k, v in (s.split("=", 1) for s in args.sets)}  # noqa: S307 - numbers
    model = create_model(args.model, data.modality_dims, num_outputs=data.task.num_outputs, **model_args)
    module = TaskModule(model, data.task)
    cuda = args.device.startswith("cuda")

    clock: dict[str, float] = {"forward": 0.0, "backward": 0.0, "batch": 0.0}
    marks: dict[str, float] = {}
    step = module.training_step

    def timed_step(*a: Any, **k: Any) -> Any:
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = step(*a, **k)
        if cuda:
            torch.cuda.synchronize()
        clock["forward"] += time.perf_counter() - t
        return out

    module.training_step = timed_step  # type: ignore[method-assign]

    class Timer(Callback):
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            marks["epoch"] = time.perf_counter()

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            marks["batch"] = time.perf_counter()

        def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
            marks["backward"] = time.perf_counter()

        def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            clock["backward"] += time.perf_counter() - marks["backward"]

        def on_train_batch_end(self, trainer: Any, pl_module: Any, *a: Any) -> None:
            now = time.perf_counter()
            clock["batch"] += now - marks["batch"]
            marks["last"] = now

    _quiet_lightning()
    trainer = L.Trainer(
        max_epochs=1, accelerator="gpu" if cuda else "cpu", devices=1, logger=False, callbacks=[Timer()],
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        num_sanity_val_steps=0, limit_train_batches=args.limit_batches or 1.0, limit_val_batches=1,
    )
    train_loader = make_loader(data.split("train"), args.batch, shuffle=True, pin_memory=cuda)
    valid_loader = make_loader(data.split("valid"), args.batch, shuffle=False, pin_memory=cuda)
    trainer.fit(module, train_loader, valid_loader)
    total = marks["last"] - marks["epoch"]
    fwd, bwd, batch = clock["forward"], clock["backward"], clock["batch"]
    rows = [
        ("forward (training_step)", fwd),
        ("backward", bwd),
        ("optimizer + hooks in the step", batch - fwd - bwd),
        ("data (fetch, collate, transfer) + loop", total - batch),
    ]
    n = trainer.fit_loop.epoch_loop.batch_progress.total.completed
    print(f"model {args.model}, {n} batches of {args.batch}, epoch (training part) {total:.2f} s")
    print("| part | seconds | share |")
    print("|---|---:|---:|")
    for name, sec in rows:
        print(f"| {name} | {sec:.2f} | {100 * sec / total:.1f}% |")
    outside = total - fwd - bwd
    print(f"outside forward and backward: {100 * outside / total:.1f}% "
          f"(of which data + loop {100 * (total - batch) / total:.1f}%)")


if __name__ == "__main__":
    main()
