"""``mmlatch verify``: check a run directory, or an extracted dataset, and say what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``verify`` command to ``app``."""
    from mmlatch.cli.common import fail as _fail
    from mmlatch.cli.common import run_guarded as _run_guarded

    @app.command()
    def verify(
        run: Optional[Path] = typer.Option(None, "--run", help="A run directory (train, experiment run, import)."),
        data: Optional[Path] = typer.Option(None, "--data", help="An extracted dataset (.npz with its manifest JSON)."),
    ) -> None:
        """Check files present, SHA-256 of weights, checkpoints and extracted data, and that config,
        weights and metrics come from one run; one line per check, exit code 1 when something is wrong."""
        if (run is None) == (data is None):
            _fail("give --run DIR or --data FILE.npz")
        from mmlatch.training.verify import PROBLEM, verify_extraction, verify_run

        findings = _run_guarded(verify_run, run) if run is not None else _run_guarded(verify_extraction, data)
        for finding in findings:
            typer.echo(str(finding))
        problems = sum(f.status == PROBLEM for f in findings)
        typer.echo(f"{run or data}: " + (f"{problems} problem(s)" if problems else "no problems found"))
        if problems:
            raise typer.Exit(code=1)
