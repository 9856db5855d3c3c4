"""ONNX Runtime against PyTorch for inference, on the same batches: milliseconds per batch and
the largest output difference from PyTorch float32.

Each model (MOSEI dims, seeded weights) is exported as ``mmlatch export --format onnx``
exports it (opset 17, dynamic batch and length) and run by onnxruntime's CPU provider with
the same thread count as torch; ``int8`` is onnxruntime's dynamic quantisation of that graph
(``quantize_dynamic``: weights int8, activations quantised per batch). onnxruntime's CPU
provider has no bfloat16 kernels for these graphs' operators (LSTM, MatMul, Softmax), so
there is no ONNX bfloat16 column. Batches: 32 samples, length 50, lengths 10-50 (one at 50);
every engine runs one batch in turn, round after round (medians).

    python benchmarks/onnx_inference.py [--models baseline,mmlatch,mult,hctmg] [--threads 1] [--steps 15]
    python benchmarks/onnx_inference.py --runs RUN_DIR ... [--split test]

``--runs``: instead, each finished run's test MAE with every engine (trained weights: what
int8 quantisation and bf16 do to accuracy).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mmlatch.analysis.export import ExportWrapper, _export_onnx
from mmlatch.models import MOSEI_DIMS, create_model
from mmlatch.training.precision import cpu_has_native_bf16
from mmlatch.training.threads import configure_threads


@contextlib.contextmanager
def _quiet():  # type: ignore[no-untyped-def]
    """Standard output and error of this process (C level included) go nowhere inside."""
    import logging
    import os
    import sys

    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1), os.dup2(null, 2)
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)
        logging.disable(logging.NOTSET)


def _sessions(wrapper: ExportWrapper, inputs: tuple, threads: int, int8: bool) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(_export_onnx(wrapper, inputs, 17))
        sessions = {"ORT fp32": ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])}
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            q = Path(tmp) / "model.int8.onnx"
            with _quiet():  # the quantiser prints shape-inference dumps and advice
                quantize_dynamic(str(path), str(q), weight_type=QuantType.QInt8)
            sessions["ORT int8"] = ort.InferenceSession(str(q), options, providers=["CPUExecutionProvider"])
    return sessions


def run_maes(runs: list[str], split: str, threads: int) -> None:
    """Test MAE of each run with every engine."""
    from mmlatch.data.batching import make_loader
    from mmlatch.metrics import compute_metrics
    from mmlatch.training.run import load_data, load_run_model

    print("| run | torch fp32 MAE | torch bf16 change | ORT fp32 change | ORT int8 change |")
    print("|---|---:|---:|---:|---:|")
    for run in runs:
        model, spec, cfg = load_run_model(run)
        dataset = load_data(cfg, run=run)
        mods = list(spec["modality_dims"])
        wrapper = ExportWrapper(model.eval(), mods).eval()
        batches = [b for b in make_loader(dataset.split(split), 64, shuffle=False)]
        as_inputs = lambda b: (*[b.features[m] for m in mods], b.lengths[mods[0]])  # noqa: E731
        sessions = _sessions(wrapper, as_inputs(batches[0]), threads, True)
        preds: dict[str, list[np.ndarray]] = {k: [] for k in ("torch fp32", "torch bf16", *sessions)}
        for b in batches:
            inputs = as_inputs(b)
            with torch.inference_mode():
                preds["torch fp32"].append(wrapper(*inputs).numpy())
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    preds["torch bf16"].append(wrapper(*inputs).float().numpy())
            for k, sess in sessions.items():
                names = [i.name for i in sess.get_inputs()]
                feed = {n: t.numpy() for n, t in zip(wrapper.input_names(), inputs) if n in names}
                preds[k].append(sess.run(["prediction"], feed)[0])
        labels = np.concatenate([b.labels.numpy() for b in batches])
        mae = {k: compute_metrics(dataset.task, np.concatenate(v), labels)["mae"] for k, v in preds.items()}
        base = mae["torch fp32"]
        print(f"| {run} | {base:.4f} | " + " | ".join(f"{mae[k] - base:+.4f}" for k in list(mae)[1:]) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="baseline,mmlatch,mult,hctmg")
    parser.add_argument("--threads", type=int, default=None, help="default: fit the free cores")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--runs", nargs="*", default=None, help="finished runs: test MAE per engine instead")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    import onnxruntime as ort

    threads = configure_threads(args.threads).threads
    if args.runs:
        run_maes(args.runs, args.split, threads)
        return
    g = torch.Generator().manual_seed(0)
    x = [torch.randn(args.batch, args.length, f, generator=g) for f in MOSEI_DIMS.values()]
    lengths = torch.randint(max(1, args.length // 5), args.length + 1, (args.batch,), generator=g)
    lengths[0] = args.length
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, {threads} thread(s), CPU native bf16: "
          f"{cpu_has_native_bf16()}, batch {args.batch}, length {args.length}")
    print("| model | torch fp32 ms | torch bf16 ms | ORT fp32 ms (max diff) | ORT int8 ms (max diff) | fastest |")
    print("|---|---:|---:|---:|---:|---|")
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = create_model(name, MOSEI_DIMS).eval()
        wrapper = ExportWrapper(model, list(MOSEI_DIMS)).eval()
        inputs = (*x, lengths)
        sessions = _sessions(wrapper, inputs, threads, not args.no_int8)
        names = [i.name for i in sessions["ORT fp32"].get_inputs()]
        feed = {n: t.numpy() for n, t in zip(wrapper.input_names(), inputs) if n in names}

        def torch_run(bf16: bool) -> np.ndarray:
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with torch.inference_mode(), ctx:
                return wrapper(*inputs).float().numpy()

        engines: dict[str, Callable[[], np.ndarray]] = {
            "torch fp32": lambda: torch_run(False),
            "torch bf16": lambda: torch_run(True),
            **{k: (lambda s=s: s.run(["prediction"], feed)[0]) for k, s in sessions.items()},
        }
        reference = engines["torch fp32"]()
        diff = {k: float(np.abs(fn() - reference).max()) for k, fn in engines.items()}
        samples: dict[str, list[float]] = {k: [] for k in engines}
        for i in range(args.warmup + args.steps):
            for k, fn in engines.items():
                t = time.perf_counter()
                fn()
                if i >= args.warmup:
                    samples[k].append(time.perf_counter() - t)
        ms = {k: statistics.median(v) * 1000 for k, v in samples.items()}
        cell = lambda k: f"{ms[k]:.1f} ({diff[k]:.1e})" if k in ms else "-"  # noqa: E731
        print(f"| {name} | {ms['torch fp32']:.1f} | {ms['torch bf16']:.1f} ({diff['torch bf16']:.1e}) | {cell('ORT fp32')} "
              f"| {cell('ORT int8')} | {min(ms, key=ms.get)} |", flush=True)


if __name__ == "__main__":
    main()
