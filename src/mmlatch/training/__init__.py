"""Training: config, Lightning module, run directories.

Names are imported on first use, so ``from mmlatch.training import load_config`` does not
import the run machinery (and an error in a config is answered without it).
"""

from typing import Any

_NAMES = {
    "ConfigError": "mmlatch.training.config",
    "TrainConfig": "mmlatch.training.config",
    "load_config": "mmlatch.training.config",
    "RunError": "mmlatch.training.run",
    "TrainingInterrupted": "mmlatch.training.run",
    "evaluate_run": "mmlatch.training.run",
    "load_run_model": "mmlatch.training.run",
    "train": "mmlatch.training.run",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'mmlatch.training' has no attribute {name!r}")
