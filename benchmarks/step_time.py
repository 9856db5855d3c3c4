"""Milliseconds per training step and per inference batch: float32 and bfloat16 side by side,
with the MMLatch authors' code and MulT's public code beside ours in the same run.

Batch 32, length 50, MOSEI dims (text 300, audio 74, visual 35), lengths drawn from 10-50
(seeded; one sample at the full length), with the optimizer training uses. Every
implementation in a row runs one step in turn, round after round, in one process (so a
machine's load falls on all of them alike); the figures are medians over the rounds after
warm-up. Usage (one command, one table):

    python benchmarks/step_time.py [--models baseline,mmlatch,mult,hctmg] [--variants paper,authors]
        [--authors-code DIR] [--mult-code DIR] [--threads 1] [--steps 15] [--device cpu|cuda|auto]
        [--lstm-floor] [--split 256]

Columns per row: ours in float32, ours in bfloat16 (training ``bf16-mixed``: autocast, float32
weights; inference ``bf16``: autocast), the reference in float32 as released, and speed-ups
(reference / ours) for float32 vs float32 and for this project's defaults (``auto``
precision: bfloat16 for the models measured to keep their accuracy, on a CPU with native
bfloat16; see mmlatch.training.precision) vs the reference; on CPU the same two speed-ups
again from the process's CPU time per call (``time.process_time``), which other jobs on a
shared machine disturb much less than wall time (with one thread, it is the step's compute).

References (never part of this repository; give the paths of checkouts):
- ``--authors-code DIR``: the MMLatch authors' repository (its ``mmlatch/`` package, copied to
  a scratch directory and imported under another name; ``AVTClassifier``, their ``run.py``
  and ``config.yaml`` settings: projection 100, feedback on for mmlatch, off for the baseline,
  Adam lr 5e-4, L1 loss, ``backward(retain_graph=True)`` as their trainer).
  Their ``util.py`` imports ``validators`` (unused by the model): a stand-in is given when
  it is not installed.
- ``--mult-code DIR``: MulT's public repository (``src/models.py`` ``MULTModel``, main.py's
  defaults: d 30, 5 crossmodal layers, 5 heads, its causal mask, Adam lr 1e-3, L1 loss, clip
  0.8); compared with our ``mult`` at those sizes. One compatibility edit on the scratch
  copy: ``positions.view(-1)`` -> ``.reshape(-1)`` (torch 2.x needs it).
``--split N`` (default 256; 0: off) adds, for each model with a reference, a row for
inference over a split of N samples (lengths as above, its own seed): ours as ``evaluate``
and ``predict`` run it (``mmlatch.training.inference.infer``: batches of samples of similar
lengths, results in the split's order), the reference over its batches in the split's order,
each padded to its longest sample; figures are per batch (the split's time / its batches).
``--lstm-floor`` adds what the model's LSTM kernels alone take (every ``nn.LSTM`` call of one
step replayed on its own, gradients where the step had them).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mmlatch.data.dataset import Split
from mmlatch.models import MOSEI_DIMS, count_parameters, create_model, model_arguments
from mmlatch.models.latefusion import DEFAULT_VARIANT
from mmlatch.modules.rnn import forget_chunk_plans
from mmlatch.training.inference import infer
from mmlatch.training.module import make_adam
from mmlatch.training.precision import cpu_has_native_bf16, resolve_inference_precision, resolve_train_precision
from mmlatch.training.run import resolve_device
from mmlatch.training.threads import configure_threads

#: our mult at the sizes of MulT's public code (main.py defaults)
MULT_PUBLIC = {"hidden": 30, "layers": 5, "heads": 5, "causal": True, "embed_dropout": 0.25, "out_dropout": 0.0}


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



Step = Callable[[], None]


def _inputs(batch: int, length: int, device: str) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = {k: torch.randn(batch, length, f, generator=g).to(device) for k, f in MOSEI_DIMS.items()}
    lengths = torch.randint(max(1, length // 5), length + 1, (batch,), generator=g)
    lengths[0] = length  # the batch is as long as its longest sample
    y = torch.randn(batch, 1, generator=g).to(device)
    return x, lengths, y


def _split_inputs(n: int, batch: int, length: int, device: str) -> tuple[Split, list[tuple[dict, torch.Tensor]]]:
    """``n`` samples of lengths drawn from ``length // 5``-``length`` (seeded): as a
    :class:`Split` for our ``infer``, and as the reference's batches of ``batch`` in the
    split's order, each padded to its longest sample (as its collator pads)."""
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(max(1, length // 5), length + 1, (n,), generator=g)
    real = (torch.arange(length)[None, :] < lengths[:, None]).unsqueeze(2)
    feats = {k: torch.randn(n, length, f, generator=g) * real for k, f in MOSEI_DIMS.items()}
    split = Split({k: v.numpy() for k, v in feats.items()}, {k: lengths.numpy().copy() for k in feats},
                  torch.zeros(n, 1).numpy(), [str(i) for i in range(n)])
    batches = []
    for start in range(0, n, batch):
        lens = lengths[start : start + batch]
        top = int(lens.max())
        batches.append(({k: v[start : start + batch, :top].to(device) for k, v in feats.items()}, lens))
    return split, batches


def _autocast(precision: str, device: str) -> Any:
    if precision in ("bf16", "bf16-mixed"):
        return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def ours(name: str, variant: str | None, device: str, x: dict, lengths: torch.Tensor, y: torch.Tensor,
         precision: str, **model_args: Any) -> tuple[torch.nn.Module, Step, Step]:
    """Our model ``name``: (model, train step, inference batch) in ``precision``."""
    torch.manual_seed(0)
    model = create_model(name, MOSEI_DIMS, variant=variant, **model_args).to(device)
    opt = make_adam(model.parameters(), lr=5e-4)  # the optimizer training uses
    lens = lengths.to(device)

    def train_step() -> None:
        forget_chunk_plans()  # every step plans its LSTM chunks anew, as a new batch does
        model.train()
        opt.zero_grad(set_to_none=True)
        with _autocast(precision, device):
            pred = model(x, lens).prediction
        torch.nn.functional.l1_loss(pred.float(), y).backward()
        opt.step()

    @torch.inference_mode()
    def infer() -> None:
        forget_chunk_plans()
        model.eval()
        with _autocast(precision, device):
            model(x, lens).prediction.float()

    return model, train_step, infer


def ours_split(model: torch.nn.Module, split: Split, batch: int, device: str, precision: str) -> Step:
    """Our inference over a whole split, as ``evaluate``/``predict`` run it (``infer``:
    batches of similar lengths, results in the split's order)."""
    return lambda: infer(model, split, batch_size=batch, device=device, precision=precision)


def ref_split(ref_model: torch.nn.Module, batches: list[tuple[dict, torch.Tensor]], kind: str) -> Step:
    """The reference's inference over the same samples: its batches in the split's order."""

    @torch.no_grad()
    def run() -> None:
        ref_model.eval()
        for feats, lens in batches:
            if kind == "authors":
                ref_model({"text": feats["text"], "audio": feats["audio"], "visual": feats["visual"], "lengths": lens})
            else:
                ref_model(feats["text"], feats["audio"], feats["visual"])

    return run


def _scratch_copy(src: Path, name: str, rename: tuple[str, str] | None = None,
                  edits: dict[str, tuple[str, str]] | None = None) -> Path:
    """Copy ``src`` to a scratch directory as ``name`` (imports renamed, files edited); the
    directory to put on sys.path."""
    root = Path(tempfile.mkdtemp(prefix="mmlatch-ref-"))
    dest = root / name
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git", "data", "cache"))
    for py in dest.rglob("*.py"):
        text = py.read_text()
        if rename:
            text = text.replace(f"from {rename[0]}.", f"from {rename[1]}.").replace(f"import {rename[0]}.", f"import {rename[1]}.")
        rel = str(py.relative_to(dest))
        if edits and rel in edits:
            text = text.replace(*edits[rel])
        py.write_text(text)
    return root


def authors_model(code: Path, feedback: bool, device: str, x: dict, lengths: torch.Tensor,
                  y: torch.Tensor) -> tuple[torch.nn.Module, Step, Step]:
    """The MMLatch authors' AVTClassifier (their config.yaml), trained as their trainer does."""
    if not (code / "mmlatch" / "mm.py").is_file():
        raise SystemExit(f"--authors-code {code}: no mmlatch/mm.py (the MMLatch authors' repository?)")
    if "mmlatch_authors_ref" not in sys.modules:
        root = _scratch_copy(code / "mmlatch", "mmlatch_authors_ref", rename=("mmlatch", "mmlatch_authors_ref"))
        sys.path.insert(0, str(root))
        try:
            importlib.import_module("validators")
        except ImportError:  # their util.py's URL checks: not used by the model
            stand_in = types.ModuleType("validators")
            stand_in.ValidationFailure = type("ValidationFailure", (), {})  # type: ignore[attr-defined]
            sys.modules["validators"] = stand_in
    mm = importlib.import_module("mmlatch_authors_ref.mm")
    torch.manual_seed(0)
    model = mm.AVTClassifier(
        MOSEI_DIMS["text"], MOSEI_DIMS["audio"], MOSEI_DIMS["visual"], 100,
        bidirectional=True, dropout=0.2, encoder_type="lstm", attention=True,
        feedback=feedback, feedback_type="learnable_sequence_mask", device=device, num_classes=1,
    ).to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    inputs = {"text": x["text"], "audio": x["audio"], "visual": x["visual"], "lengths": lengths.cpu()}

    def train_step() -> None:
        model.train()
        loss = torch.nn.functional.l1_loss(model(inputs), y)
        loss.backward(retain_graph=True)
        opt.step()
        opt.zero_grad()

    @torch.no_grad()
    def infer() -> None:
        model.eval()
        model(inputs)

    return model, train_step, infer


def mult_public_model(code: Path, device: str, x: dict, y: torch.Tensor) -> tuple[torch.nn.Module, Step, Step]:
    """MulT's public MULTModel with main.py's defaults, trained as its train.py does."""
    if not (code / "src" / "models.py").is_file():
        raise SystemExit(f"--mult-code {code}: no src/models.py (MulT's public repository?)")
    if "mult_ref_models" not in sys.modules:
        edit = {"position_embedding.py": ("positions.view(-1)", "positions.reshape(-1)")}
        root = _scratch_copy(code / "modules", "modules", edits=edit)
        sys.path.insert(0, str(root))
        spec = importlib.util.spec_from_file_location("mult_ref_models", code / "src" / "models.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["mult_ref_models"] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    hyp = types.SimpleNamespace(
        orig_d_l=MOSEI_DIMS["text"], orig_d_a=MOSEI_DIMS["audio"], orig_d_v=MOSEI_DIMS["visual"],
        vonly=True, aonly=True, lonly=True, num_heads=5, layers=5, attn_dropout=0.1, attn_dropout_a=0.0,
        attn_dropout_v=0.0, relu_dropout=0.1, res_dropout=0.1, out_dropout=0.0, embed_dropout=0.25,
        attn_mask=True, output_dim=1,
    )
    torch.manual_seed(0)
    model = sys.modules["mult_ref_models"].MULTModel(hyp).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs = (x["text"], x["audio"], x["visual"])

    def train_step() -> None:
        model.train()
        model.zero_grad()
        preds, _ = model(*xs)
        torch.nn.functional.l1_loss(preds, y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.8)
        opt.step()

    @torch.no_grad()
    def infer() -> None:
        model.eval()
        model(*xs)

    return model, train_step, infer


def interleaved(fns: dict[str, Step], device: str, warmup: int, steps: int,
                cpu_ms: dict[str, float] | None = None) -> dict[str, float]:
    """Median ms of each function, the functions run one after the other, round after round.
    ``cpu_ms``, if given, receives the median CPU time of this process per call (less
    sensitive than wall time to other jobs on the machine; CPU runs only)."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + steps):
        for key, fn in fns.items():
            _sync(device)
            t, c = time.perf_counter(), time.process_time()
            fn()
            _sync(device)
            if i >= warmup:
                samples[key].append(time.perf_counter() - t)
                cpu[key].append(time.process_time() - c)
    if cpu_ms is not None:
        cpu_ms.update({k: statistics.median(v) * 1000 for k, v in cpu.items()})
    return {k: statistics.median(v) * 1000 for k, v in samples.items()}


def _fmt_ratio(ref: float | None, ours_ms: float) -> str:
    return f"{ref / ours_ms:.2f}x" if ref else "-"


def _print_row(label: str, mode: str, ms: dict[str, float], cpu: dict[str, float], ref_name: str | None,
               default: str) -> None:
    """One table row: ``ms``/``cpu`` hold ``32``, ``bf16`` and (with a reference) ``ref``;
    ``default`` is the model's default precision in this mode."""
    key = "bf16" if default in ("bf16", "bf16-mixed") else "32"
    ref_ms = ms.get("ref")
    ref_s = f"{ref_ms:.1f} ({ref_name})" if ref_ms else "-"
    cpu_s = f"{_fmt_ratio(cpu.get('ref'), cpu['32'])} | {_fmt_ratio(cpu.get('ref'), cpu[key])}" if cpu else "- | -"
    print(f"| {label} | {mode} | {ms['32']:.1f} | {ms['bf16']:.1f} | {ref_s} | {_fmt_ratio(ref_ms, ms['32'])} "
          f"| {default} | {_fmt_ratio(ref_ms, ms[key])} | {cpu_s} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="baseline,mmlatch,mult,hctmg", help="comma-separated names")
    parser.add_argument("--variants", default="paper,authors", help="variants of baseline/mmlatch")
    parser.add_argument("--authors-code", type=Path, default=None, help="a checkout of the MMLatch authors' code")
    parser.add_argument("--mult-code", type=Path, default=None, help="a checkout of MulT's public code")
    parser.add_argument("--threads", type=int, default=None, help="default: fit the free cores")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--lstm-floor", action="store_true", help="add the LSTM kernels' own time")
    parser.add_argument("--split", type=int, default=256,
                        help="also time inference over a split of this many samples (0: not)")
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except RuntimeError as exc:
        parser.error(str(exc))
    threads = configure_threads(args.threads)
    names = args.models.split(",")
    x, lengths, y = _inputs(args.batch, args.length, device)
    cuda = device.startswith("cuda")
    where = torch.cuda.get_device_name(device) if cuda else (
        f"{threads.threads} thread(s) ({threads.source}), CPU native bf16: {cpu_has_native_bf16()}"
    )
    if not cuda:
        where += "; no GPU figures (no CUDA device here)" if not torch.cuda.is_available() else ""
    print(f"device {device}, {where}, batch {args.batch}, length {args.length}, dims {MOSEI_DIMS}, "
          f"medians of {args.steps} interleaved rounds after {args.warmup}")
    print("| model | mode | ours fp32 ms | ours bf16 ms | reference fp32 ms | fp32 vs ref | defaults | defaults vs ref "
          "| CPU time: fp32 vs ref | CPU time: defaults vs ref |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for name in names:
        variants = args.variants.split(",") if "variant" in model_arguments(name) else [None]
        for variant in variants:
            extra = MULT_PUBLIC if name == "mult" and args.mult_code else {}
            label = name if variant is None else f"{name} [{variant}{', default' if variant == DEFAULT_VARIANT else ''}]"
            if extra:
                label += " at MulT public sizes"
            m32, tr32, inf32 = ours(name, variant, device, x, lengths, y, "32", **extra)
            _, trbf, infbf = ours(name, variant, device, x, lengths, y, "bf16-mixed", **extra)
            ref_name, ref = None, None
            if name in ("baseline", "mmlatch") and args.authors_code:
                ref_name = "authors' code"
                ref = authors_model(args.authors_code, name == "mmlatch", device, x, lengths, y)
            elif name == "mult" and args.mult_code:
                ref_name = "MulT public"
                ref = mult_public_model(args.mult_code, device, x, y)
            defaults = {
                "train": resolve_train_precision("auto", device, name),
                "infer": resolve_inference_precision("auto", device, name),
            }
            for mode, fns in (("train", {"32": tr32, "bf16": trbf}), ("infer", {"32": inf32, "bf16": infbf})):
                if ref is not None:
                    fns["ref"] = ref[1] if mode == "train" else ref[2]
                cpu: dict[str, float] = {}
                ms = interleaved(fns, device, args.warmup, args.steps, None if cuda else cpu)
                _print_row(label, mode, ms, cpu, ref_name, defaults[mode])
            if args.lstm_floor and any(isinstance(m, torch.nn.LSTM) for m in m32.modules()):
                floor = {mode: interleaved({"lstm": _lstm_replay(m32, fn, mode == "train", device)}, device,
                                           args.warmup, args.steps)["lstm"]
                         for mode, fn in (("train", tr32), ("infer", inf32))}
                print(f"| {label} | LSTMs alone fp32 (train / infer) | {floor['train']:.1f} / {floor['infer']:.1f} | | | | | | | |")
            if args.split and ref is not None:
                split, ref_batches = _split_inputs(args.split, args.batch, args.length, device)
                fns = {"32": ours_split(m32, split, args.batch, device, "32"),
                       "bf16": ours_split(m32, split, args.batch, device, "bf16"),
                       "ref": ref_split(ref[0], ref_batches, "authors" if ref_name == "authors' code" else "mult")}
                cpu = {}
                per = len(ref_batches)
                ms = {k: v / per for k, v in interleaved(fns, device, 1, max(3, args.steps // 2), None if cuda else cpu).items()}
                _print_row(label, f"infer, split of {args.split} (ms per batch)", ms,
                           {k: v / per for k, v in cpu.items()}, ref_name, defaults["infer"])
            print(f"<!-- {label}: {count_parameters(m32):,} parameters"
                  + (f"; reference {count_parameters(ref[0]):,}" if ref else "") + " -->", flush=True)


if __name__ == "__main__":
    main()
