"""Hyperparameter search with Optuna, on the validation set only.

The experiment file's ``search`` section maps config keys to distributions::

    search:
      lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
      model_args.hidden: {type: categorical, choices: [50, 100, 150]}
      model_args.dropout: {type: float, low: 0.0, high: 0.5}
      batch_size: {type: int, low: 16, high: 64, step: 16}

Every trial trains the experiment's run (the first, or ``run_name``) with one seed into
``OUT/trials/trial<k>/`` and returns its best validation score (test data are never
scored). Trials live in a SQLite file (``OUT/optuna.db`` by default), so a search can be
interrupted, resumed and shared: re-running continues until ``trials`` trials are complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mmlatch.metrics import PRIMARY_METRIC, lower_is_better
from mmlatch.training.config import ConfigError
from mmlatch.training.experiment import Experiment, execute_run

_TYPES = ("float", "int", "categorical")


def _suggest(trial: Any, key: str, spec: dict[str, Any]) -> Any:
    kind = spec.get("type")
    if kind == "float":
        return trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False)))
    if kind == "int":
        return trial.suggest_int(key, int(spec["low"]), int(spec["high"]), step=int(spec.get("step", 1)), log=bool(spec.get("log", False)))
    if kind == "categorical":
        return trial.suggest_categorical(key, list(spec["choices"]))
    raise ConfigError(f"search.{key}: type must be one of {_TYPES}, got {kind!r}")


def tune(
    exp: Experiment,
    out: str | Path,
    trials: int,
    *,
    run_name: str | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the search; returns ``{"best_value", "best_params", "metric", "trials"}``."""
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError("mmlatch tune needs Optuna: pip install 'mmlatch[tune]'") from exc
    if not exp.search:
        raise ConfigError(f"experiment {exp.name!r} has no 'search' section to tune")
    for key, spec in exp.search.items():
        if not isinstance(spec, dict) or spec.get("type") not in _TYPES:
            raise ConfigError(f"search.{key}: needs type one of {_TYPES}")
    runs = {r.name: r for r in exp.runs}
    run = runs[run_name] if run_name else exp.runs[0]
    if run_name and run_name not in runs:
        raise ConfigError(f"no run {run_name!r} in the experiment; runs: {sorted(runs)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out / 'optuna.db').resolve()}"
    base = exp.run_config(run, exp.seeds[0])
    from mmlatch.training.run import load_data

    task = load_data(base).task
    metric = PRIMARY_METRIC[task.kind]
    minimize = lower_is_better(metric)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name or f"{exp.name}-{run.name}",
        storage=storage,
        load_if_exists=True,
        direction="minimize" if minimize else "maximize",
        sampler=optuna.samplers.TPESampler(seed=exp.seeds[0]),
    )

    def objective(trial: Any) -> float:
        params = {k: _suggest(trial, k, spec) for k, spec in exp.search.items()}
        cfg_overrides = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in params.items()]
        from mmlatch.training.config import TrainConfig, apply_overrides

        values = apply_overrides(base.to_dict(), cfg_overrides)
        cfg = TrainConfig.from_dict(values, where=f"trial {trial.number}")
        d = out / "trials" / f"trial{trial.number}"
        result = execute_run(cfg.to_dict(), str(d), None, evaluate_test=False)
        value = result["valid"][metric]
        log(f"trial {trial.number}: valid {metric} {value:.4f} {params}")
        return float(value)

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    remaining = max(0, trials - len(complete))
    if remaining:
        study.optimize(objective, n_trials=remaining)
    return {
        "metric": f"valid_{metric}",
        "best_value": study.best_value,
        "best_params": study.best_params,
        "trials": len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]),
        "storage": storage,
    }
