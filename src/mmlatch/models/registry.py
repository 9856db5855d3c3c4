"""Named model presets: ``@register_model`` builders and ``create_model``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

Builder = Callable[..., nn.Module]

MOSEI_DIMS: dict[str, int] = {"text": 300, "audio": 74, "visual": 35}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    description: str
    #: training settings the preset recommends (lr, batch_size, grad_clip ...), used by configs
    train_defaults: dict[str, Any]


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, description: str = "", **train_defaults: Any
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(modality_dims, **kwargs) -> nn.Module`` as ``name``."""

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        doc = description or (builder.__doc__ or "").strip().splitlines()[0]
        _REGISTRY[name] = ModelEntry(name, builder, doc, dict(train_defaults))
        return builder

    return wrap


def list_models() -> list[str]:
    """Registered model names, in registration order."""
    _ensure_builtin()
    return list(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; KeyError naming the known models otherwise."""
    _ensure_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def model_arguments(name: str) -> dict[str, Any]:
    """The builder's keyword arguments and their defaults (what ``--set model_args.X`` takes)."""
    sig = inspect.signature(get_entry(name).builder)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }


def create_model(name: str, modality_dims: dict[str, int], **overrides: Any) -> nn.Module:
    """Build preset ``name`` for the given modalities; ``None`` overrides keep the default.

    Args:
        name: a registered model name (``mmlatch models`` lists them).
        modality_dims: modality -> feature size, in the key order the model uses.
        **overrides: builder keyword arguments.
    """
    entry = get_entry(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    known = model_arguments(name)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise TypeError(
            f"model {name!r} has no argument(s) {unknown}; it takes {sorted(known)}"
        )
    if not modality_dims:
        raise ValueError("modality_dims is empty")
    return entry.builder(dict(modality_dims), **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _ensure_builtin() -> None:
    # Importing the model modules runs their @register_model decorators.
    # Registration order is the listing order: the paper's models first.
    import mmlatch.models.latefusion  # noqa: F401
    import mmlatch.models.mult  # noqa: F401, I001
    import mmlatch.models.hctmg  # noqa: F401
