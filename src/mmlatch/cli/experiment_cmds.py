"""``mmlatch experiment`` and ``mmlatch tune``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the experiment commands to ``app``."""
    from mmlatch.cli.common import EVAL_PRECISION_OPT, PRECISION_OPT, THREADS_OPT
    from mmlatch.cli.common import precisions as _precisions
    from mmlatch.cli.common import run_guarded as _run_guarded

    @app.command()
    def experiment(
        config: Path = typer.Option(..., "--config", "-c", help="Experiment YAML (runs x seeds)."),
        seeds: Optional[int] = typer.Option(None, help="Seeds 0..N-1 (default: the file's, else 5)."),
        jobs: int = typer.Option(1, help="Runs at once; each gets (free cores)/jobs torch threads."),
        out: Path = typer.Option(Path("runs/experiment"), help="Output directory."),
        data: Optional[str] = typer.Option(None, help="Data for every run (replaces the file's)."),
        epochs: Optional[int] = typer.Option(None, help="Maximum epochs of every run."),
        set_: list[str] = typer.Option([], "--set", help="Override for every run: key=value."),
        fmt: str = typer.Option("md", "--format", help="Table format to print: md | latex | csv."),
        backend: str = typer.Option("local", help="local | ray (each run a Ray task)."),
        ray_address: Optional[str] = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)."),
        threads: Optional[int] = THREADS_OPT,
        precision: Optional[str] = PRECISION_OPT,
        eval_precision: Optional[str] = EVAL_PRECISION_OPT,
    ) -> None:
        """Run an experiment: every run for every seed; writes runs/, results.csv, table.md.

        Finished runs are skipped and interrupted ones resume from their last checkpoint.
        """
        from mmlatch.training.experiment import load_experiment, run_experiment, summary_table

        if fmt not in ("md", "latex", "csv"):
            raise typer.BadParameter("use md, latex or csv", param_hint="--format")
        set_ = [*set_, f"threads={threads}"] if threads is not None else set_
        precision, eval_precision = _precisions(precision, eval_precision)
        set_ += [f"{k}={v}" for k, v in (("precision", precision), ("eval_precision", eval_precision)) if v is not None]
        exp = _run_guarded(load_experiment, config, data=data, seeds=seeds, epochs=epochs, overrides=set_)
        results = _run_guarded(
            run_experiment, exp, out, jobs=jobs, backend=backend, fmt=fmt, ray_address=ray_address,
            log=typer.echo,
        )
        typer.echo(f"\nresults: {out / 'results.csv'} ({len(results)} runs); table: {out / 'table.md'}\n")
        typer.echo(summary_table(results, fmt))

    @app.command()
    def tune(
        config: Path = typer.Option(..., "--config", "-c", help="Experiment YAML with a 'search' section."),
        trials: int = typer.Option(20, help="Total trials (a resumed study runs the rest)."),
        out: Path = typer.Option(Path("runs/tune"), help="Output directory (trials/ and optuna.db)."),
        run: Optional[str] = typer.Option(None, help="Which run of the experiment to tune (default: the first)."),
        data: Optional[str] = typer.Option(None, help="Data (replaces the file's)."),
        epochs: Optional[int] = typer.Option(None, help="Maximum epochs per trial."),
        set_: list[str] = typer.Option([], "--set", help="Override for every trial: key=value."),
        storage: Optional[str] = typer.Option(None, help="Optuna storage URL (default: sqlite:///OUT/optuna.db)."),
        study: Optional[str] = typer.Option(None, help="Study name (default: experiment-run)."),
        threads: Optional[int] = THREADS_OPT,
    ) -> None:
        """Hyperparameter search with Optuna on the validation set (the test set is never scored)."""
        from mmlatch.training.experiment import load_experiment
        from mmlatch.training.tune import tune as run_tune

        set_ = [*set_, f"threads={threads}"] if threads is not None else set_
        exp = _run_guarded(load_experiment, config, data=data, seeds=1, epochs=epochs, overrides=set_)
        result = _run_guarded(run_tune, exp, out, trials, run_name=run, storage=storage, study_name=study, log=typer.echo)
        typer.echo(json.dumps(result, indent=2))
