"""``mmlatch import authors``: released MMLatch checkpoints -> run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``import`` command group to ``app``."""
    from mmlatch.cli.common import fail as _fail
    from mmlatch.cli.common import print_json as _print_json
    from mmlatch.cli.common import run_guarded as _run_guarded

    import_app = typer.Typer(help="Bring weights trained elsewhere into a run directory.", no_args_is_help=True)
    app.add_typer(import_app, name="import")

    @import_app.command("authors")
    def authors(
        checkpoint: Path = typer.Argument(..., help="State dict saved by the authors' trainer (.pth)."),
        model: str = typer.Option(..., "--model", help="baseline | mmlatch | mmlatch-linear (must match the file)."),
        out: Path = typer.Option(..., "--out", help="Run directory to write."),
        data: Optional[str] = typer.Option(None, help="Data the run's config.yaml names (default: mosei_senti_data.pkl)."),
    ) -> None:
        """Import the authors' released MMLatch weights (github georgepar/mmlatch) as a run.

        The run's model is the `authors` variant with the file's weights; input dims are
        read from the weights. evaluate, predict, analyze, robustness and export accept it.
        """
        from mmlatch.models.authors import AUTHORS_MODELS

        if model not in AUTHORS_MODELS:
            _fail(f"--model must be one of {', '.join(AUTHORS_MODELS)}; got {model!r}")
        if not checkpoint.is_file():
            _fail(f"checkpoint {str(checkpoint)!r} does not exist")
        from mmlatch.training.authors_import import import_authors

        spec = _run_guarded(import_authors, checkpoint, model, out, data)  # bad layouts: ValueError
        typer.echo(f"wrote {out} ({model}, variant authors)")
        _print_json({"modality_dims": spec["modality_dims"], "hidden": spec["model_args"]["hidden"]})
