"""Training: config, Lightning module, run directories."""

from mmlatch.training.config import ConfigError, TrainConfig, load_config
from mmlatch.training.run import RunError, evaluate_run, load_run_model, train

__all__ = ["ConfigError", "RunError", "TrainConfig", "evaluate_run", "load_config", "load_run_model", "train"]
