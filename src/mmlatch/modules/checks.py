"""Input checks every model runs on its batch, with messages that say what and where.

The checks read tensor values (``lengths.min()``, ``isfinite``) into Python, which a traced
or exported graph cannot record; while ``torch.jit.trace``, ``torch.onnx.export`` or
``torch.export`` runs (:func:`is_exporting`) they return at once. An exported model
therefore does not validate its inputs: its wrapper's caller must pass valid ones.
"""

from __future__ import annotations

import torch
from torch import Tensor


def is_exporting() -> bool:
    """True while the model is being traced (TorchScript) or exported (ONNX, torch.export)."""
    exporting = getattr(torch.compiler, "is_exporting", None)  # torch >= 2.6
    return (
        torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or (exporting is not None and exporting())
    )


def has_forward_hooks(module: torch.nn.Module) -> bool:
    """Whether a forward (pre-)hook watches ``module`` or a submodule: someone records their
    outputs, so a forward must not reshape what they see (split batches, packed rows)."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())


def normalize_lengths(
    features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None
) -> dict[str, Tensor]:
    """Per-modality lengths from a shared (B,) tensor, a dict, or None (= full length)."""
    if lengths is None:
        return {
            k: torch.full((x.size(0),), x.size(1), dtype=torch.long, device=x.device)
            for k, x in features.items()
        }
    if isinstance(lengths, Tensor):
        return {k: lengths for k in features}
    return lengths


def check_inputs(
    features: dict[str, Tensor],
    lengths: dict[str, Tensor],
    modality_dims: dict[str, int],
    check_finite: bool = True,
) -> None:
    """Raise ValueError unless the batch matches the model.

    Checks: the modality names, (B, L, F_k) shapes with F_k as the model expects, one batch
    size, lengths of shape (B,) within [1, L], and (optionally) finite values. Skipped while
    tracing or exporting (:func:`is_exporting`).
    """
    if is_exporting():
        return
    if not isinstance(features, dict):
        raise TypeError(f"features must be a dict modality -> Tensor, got {type(features).__name__}")
    if set(features) != set(modality_dims):
        raise ValueError(
            f"batch has modalities {sorted(features)}, the model expects {list(modality_dims)}"
        )
    batch = None
    for name, dim in modality_dims.items():
        x = features[name]
        if not isinstance(x, Tensor):
            raise TypeError(f"modality {name!r}: expected a Tensor, got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(f"modality {name!r}: expected shape (B, L, {dim}), got {tuple(x.shape)}")
        if x.size(2) != dim:
            raise ValueError(
                f"modality {name!r}: has {x.size(2)} features per step, the model expects {dim}"
            )
        if batch is None:
            batch = x.size(0)
        elif x.size(0) != batch:
            raise ValueError(f"modality {name!r}: batch size {x.size(0)} differs from {batch}")
        ln = lengths.get(name)
        if ln is None:
            raise ValueError(f"no lengths for modality {name!r}")
        if ln.shape != (x.size(0),):
            raise ValueError(f"modality {name!r}: lengths shape {tuple(ln.shape)}, expected ({x.size(0)},)")
        if x.size(0) and (int(ln.min()) < 1 or int(ln.max()) > x.size(1)):
            raise ValueError(
                f"modality {name!r}: lengths must lie in [1, {x.size(1)}], "
                f"got [{int(ln.min())}, {int(ln.max())}]"
            )
        # A finite sum proves every value finite in one cheap pass; only a non-finite sum
        # (NaN/inf inside, or finite values overflowing) needs the element-wise check.
        if check_finite and not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(f"modality {name!r}: {bad} NaN/inf values in the input features")


def check_aligned(lengths: dict[str, Tensor], features: dict[str, Tensor], who: str) -> None:
    """Raise ValueError unless every modality has the same padded length and lengths.

    Skipped while tracing or exporting (:func:`is_exporting`).
    """
    if is_exporting():
        return
    names = list(features)
    first = names[0]
    for name in names[1:]:
        if features[name].size(1) != features[first].size(1) or not torch.equal(
            lengths[name], lengths[first]
        ):
            raise ValueError(
                f"{who} needs word-aligned modalities (same length per sample); "
                f"{name!r} and {first!r} differ. Use aligned data or a model for unaligned "
                f"data (mult)."
            )
