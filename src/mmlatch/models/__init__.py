"""Assembled architectures and the model registry."""

from mmlatch.models.registry import (
    MOSEI_DIMS,
    count_parameters,
    create_model,
    get_entry,
    list_models,
    model_arguments,
    register_model,
)

__all__ = [
    "MOSEI_DIMS",
    "count_parameters",
    "create_model",
    "get_entry",
    "list_models",
    "model_arguments",
    "register_model",
]
