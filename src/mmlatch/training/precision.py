"""Which arithmetic a command runs in: float32, or bfloat16 where the CPU has it natively.

Two settings, each ``auto`` by default:

- training (``precision``, Lightning's): ``32`` | ``bf16-mixed`` | ``16-mixed`` (CUDA) | ``auto``;
- inference (``evaluate``, ``predict``, ``robustness``, a run's own scoring: ``eval_precision``):
  ``32`` | ``bf16`` | ``auto``. ``bf16`` runs the forward under ``torch.autocast`` in
  bfloat16 (matrix products and LSTMs in bfloat16, reductions and softmax in float32);
  outputs come back as float32.

``auto`` is bfloat16 only where it was measured to pay, on a CPU whose instruction set has
native bfloat16 (x86 ``avx512_bf16``/``amx_bf16``, Arm ``bf16``/``sve_bf16``, as
``torch.cpu.get_capabilities()`` reports it) and oneDNN supports it; float32 elsewhere
(CUDA included, where nothing was measured). The models and the figures behind the choice are
in ``BF16_AUTO`` and the docs/guide/speed.md ("Precision"). An explicit bfloat16 request on a CPU
without native support says so in one line and runs float32: oneDNN would emulate it, slower
than float32.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch

#: training precisions (Lightning's names, plus ``auto``)
TRAIN_PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")
#: inference precisions
INFERENCE_PRECISIONS = ("auto", "32", "bf16")

#: The models whose ``auto`` precision is bfloat16 on a CPU with native bfloat16, per mode:
#: faster (benchmarks/step_time.py) and, on the synthetic data and MMMO A+V over 3 seeds, a
#: test-MAE change within 0.005 (inference on float32-trained weights) or within the seed
#: spread (bf16-mixed training); see benchmarks/bf16_accuracy.py and the table in docs/guide/speed.md.
#: Those measurements were of runs on two or more modalities; a single-modality run stays float32
#: (MOSI text-only ``baseline``, 5 seeds: float32 MAE 0.858 / corr 0.722 / Acc2 81.2, bf16-mixed
#: 0.861 / 0.720 / 80.7, worse on every column; docs/guide/extraction.md). MulT
#: and HCT-MG keep their accuracy too but are not in them: their small matrices (head sizes
#: 5-20) ran no faster in bfloat16 (the casts cost what the products save). Models not
#: measured (the Table 1 comparators, the other top-down variants) stay float32.
BF16_AUTO: dict[str, frozenset[str]] = {
    "inference": frozenset({"baseline", "mmlatch"}),
    "training": frozenset({"baseline", "mmlatch"}),
}

_NATIVE_FLAGS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively and oneDNN (PyTorch's CPU kernels for
    LSTMs and matrix products) supports it."""
    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return False
    if not any(caps.get(flag) for flag in _NATIVE_FLAGS):
        return False
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _native(device: str) -> bool:
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def _no_native_note(device: str, asked: str) -> str:
    where = "this GPU" if device.startswith("cuda") else "this CPU"
    return f"note: {where} has no native bfloat16: {asked} runs in float32 instead"


def _auto_bf16(mode: str, device: str, model: str | None, n_modalities: int | None) -> bool:
    """Whether ``auto`` means bfloat16 for this model, device and number of modalities
    (``None``: not known, taken as several)."""
    if device.startswith("cuda") or model not in BF16_AUTO[mode]:
        return False
    if n_modalities is not None and n_modalities < 2:
        return False
    return _native(device)


def resolve_train_precision(
    requested: str,
    device: str,
    model: str | None = None,
    say: Callable[[str], None] | None = None,
    n_modalities: int | None = None,
) -> str:
    """The Lightning precision a training run uses (``32``, ``bf16-mixed`` or ``16-mixed``);
    ``n_modalities``: how many modalities the run trains on (``auto`` keeps one in float32).

    Raises:
        ValueError: an unknown name, or ``16-mixed`` off CUDA.
    """
    requested = str(requested)
    if requested not in TRAIN_PRECISIONS:
        raise ValueError(f"precision {requested!r}: choose one of {', '.join(TRAIN_PRECISIONS)}")
    cuda = device.startswith("cuda")
    if requested == "16-mixed" and not cuda:
        raise ValueError("precision 16-mixed needs a CUDA device; on CPU use bf16-mixed or 32")
    if requested == "auto":
        return "bf16-mixed" if _auto_bf16("training", device, model, n_modalities) else "32"
    if requested == "bf16-mixed" and not _native(device):
        if say is not None:
            say(_no_native_note(device, "bf16-mixed"))
        return "32"
    return requested


def resolve_inference_precision(
    requested: str,
    device: str,
    model: str | None = None,
    say: Callable[[str], None] | None = None,
    n_modalities: int | None = None,
) -> str:
    """The precision a forward pass for scoring or prediction uses (``32`` or ``bf16``);
    ``n_modalities`` as for :func:`resolve_train_precision`.

    Raises:
        ValueError: an unknown name.
    """
    requested = str(requested)
    if requested not in INFERENCE_PRECISIONS:
        raise ValueError(f"precision {requested!r}: choose one of {', '.join(INFERENCE_PRECISIONS)}")
    if requested == "auto":
        return "bf16" if _auto_bf16("inference", device, model, n_modalities) else "32"
    if requested == "bf16" and not _native(device):
        if say is not None:
            say(_no_native_note(device, "bf16"))
        return "32"
    return requested


@contextlib.contextmanager
def inference_precision(precision: str, device: str) -> Iterator[None]:
    """Run the forward passes inside in ``precision`` (a resolved one: ``32`` or ``bf16``)."""
    if precision == "bf16":
        with torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


def precision_record(train: str | None, inference: str) -> dict[str, object]:
    """What outputs record: the precisions used and whether the CPU has native bfloat16."""
    out: dict[str, object] = {"inference": inference}
    if train is not None:
        out = {"train": train, **out}
    out["cpu_native_bf16"] = cpu_has_native_bf16()
    return out


__all__ = [
    "BF16_AUTO",
    "INFERENCE_PRECISIONS",
    "TRAIN_PRECISIONS",
    "cpu_has_native_bf16",
    "inference_precision",
    "precision_record",
    "resolve_inference_precision",
    "resolve_train_precision",
]
