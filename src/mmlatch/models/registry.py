"""Named model presets: ``@register_model`` builders and ``create_model``."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable

from torch import nn

Builder = Callable[..., nn.Module]

MOSEI_DIMS: dict[str, int] = {"text": 300, "audio": 74, "visual": 35}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    description: str
    #: the builder's keyword arguments and their defaults
    arguments: dict[str, Any]
    #: a TopDown model (takes the options of TOPDOWN_ARGUMENTS)
    topdown: bool = False
    #: the model's own training defaults (``lr``, ``batch_size``, ...: keys of
    #: :class:`~mmlatch.training.config.TrainConfig`), used for the keys a run does not set
    training: Mapping[str, Any] = field(default_factory=dict)


#: the options the top-down plug-in adds to its backbone's
TOPDOWN_ARGUMENTS: dict[str, Any] = {
    "feedback": "lstm",
    "stage1_grad": False,
    "mask_dropout": 0.0,
    "feedback_dropout": 0.0,
    "feedback_gate_bias": 0.0,
}


_REGISTRY: dict[str, ModelEntry] = {}


def _keyword_defaults(builder: Builder) -> dict[str, Any]:
    sig = inspect.signature(builder)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }


def _add(entry: ModelEntry) -> None:
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry


def register_model(
    name: str, description: str = "", training: Mapping[str, Any] | None = None
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(modality_dims, *, **kwargs) -> nn.Module`` as ``name``.

    ``training``: the model's training defaults (``TrainConfig`` keys, e.g. ``lr``), used
    where a run's config, ``--set`` and options do not set them; unset keys keep the generic
    defaults of :class:`~mmlatch.training.config.TrainConfig`.
    """

    def wrap(builder: Builder) -> Builder:
        doc = description or (builder.__doc__ or "").strip().splitlines()[0]
        _add(ModelEntry(name, builder, doc, _keyword_defaults(builder), training=MappingProxyType(dict(training or {}))))
        return builder

    return wrap


def register_topdown(
    name: str,
    backbone: str,
    description: str,
    feedback: str = "lstm",
    variant_defaults: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    training: Mapping[str, Any] | None = None,
) -> None:
    """Register ``name`` = ``TopDown(<preset backbone>, feedback generators)``.

    It takes every option of the backbone preset plus those of :data:`TOPDOWN_ARGUMENTS`;
    the backbone must satisfy :class:`~mmlatch.modules.TopDownBackbone`.
    ``variant_defaults(backbone options)`` gives the values of top-down options that
    depend on the backbone's options (e.g. its ``variant``); those default to None (= that
    value) here. ``training``: its training defaults (see :func:`register_model`; None:
    the backbone's).
    """
    from mmlatch.modules.feedback import build_feedback
    from mmlatch.modules.topdown import TopDown

    base = _REGISTRY[backbone]
    own = dict(TOPDOWN_ARGUMENTS, feedback=feedback)
    if variant_defaults is not None:
        own.update({k: None for k in variant_defaults(dict(base.arguments))})

    def builder(modality_dims: dict[str, int], **kwargs: Any) -> nn.Module:
        td = {k: kwargs.pop(k, v) for k, v in own.items()}
        if variant_defaults is not None:
            for k, v in variant_defaults(kwargs).items():
                if td.get(k) is None:
                    td[k] = v
        net = base.builder(modality_dims, **kwargs)
        generators = build_feedback(
            td["feedback"],
            net.representation_dims,
            net.modality_dims,
            gate_bias=td["feedback_gate_bias"],
            dropout=td["feedback_dropout"],
        )
        return TopDown(net, generators, stage1_grad=td["stage1_grad"], mask_dropout=td["mask_dropout"])

    own_training = base.training if training is None else MappingProxyType(dict(training))
    _add(ModelEntry(name, builder, description, {**base.arguments, **own}, topdown=True, training=own_training))


def list_models() -> list[str]:
    """Registered model names, in registration order."""
    return list(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; KeyError naming the known models otherwise."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def model_arguments(name: str) -> dict[str, Any]:
    """The builder's keyword arguments and their defaults (what ``--set model_args.X`` takes)."""
    return dict(get_entry(name).arguments)


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
