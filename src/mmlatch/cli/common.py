"""What every command module of the CLI shares: failing with one line, guarding a call,
checking inputs before torch is imported, printing JSON, and the options several commands take.

The command modules (``main``, ``analysis_cmds``, ...) import this module; it imports none of
them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from mmlatch.rundir import RUN_FILES

def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


#: modules whose error classes are user-facing (all subclasses of the built-ins below)
ERROR_CLASSES = {
    "mmlatch.data.dataset": "DataError",
    "mmlatch.training.config": "ConfigError",
    "mmlatch.rundir": "RunError",
    "mmlatch.analysis.collect": "AnalysisError",
}


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input. The project's own classes are taken from modules
    already imported: an error cannot come from a module never loaded, and importing one
    here (mmlatch.training imports torch and Lightning) would make every error wait for it."""
    own = tuple(
        getattr(sys.modules[mod], name) for mod, name in ERROR_CLASSES.items() if mod in sys.modules
    )
    # OSError: a failed read or write the project's own writers did not already name (a full
    # disk under a library's writer: ONNX export, plots, TensorBoard); its text names the file
    return (*own, RuntimeError, KeyError, TypeError, ValueError, OSError)


def one_line(message: str) -> str:
    """Multi-line messages (a library's) are joined into the one line an error gets."""
    return " ".join(part.strip() for part in str(message).strip().splitlines() if part.strip())


def run_guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; turn user-facing errors into one clear line and exit code 2, and Ctrl-C
    into a line saying where it stopped and exit code 130."""
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt as exc:
        typer.secho(str(exc) or "interrupted", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(code=130) from None
    except user_errors() as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        fail(one_line(str(msg)))


def require_run(*runs: Path) -> None:
    """Fail at once (before torch is imported) when a run directory lacks its files."""
    for run in runs:
        for name in RUN_FILES:
            if not (Path(run) / name).is_file():
                fail(f"run directory {str(run)!r} has no {name}: is it a finished run?")


def require_path(value: Optional[str]) -> None:
    """Fail at once when a data path (not ``synthetic``) does not exist."""
    if value and value != "synthetic" and not Path(value).exists():
        fail(f"{value}: no such file or directory")


def print_json(data: Any) -> None:
    from mmlatch.files import nan_to_none

    typer.echo(json.dumps(nan_to_none(data), indent=2))


def data_args(
    fmt: Optional[str] = None,
    on_nonfinite: Optional[str] = None,
    folds: Optional[Path] = None,
    keep_sp: bool = False,
    csd_modality: Optional[list[str]] = None,
    max_len: Optional[int] = None,
) -> dict[str, Any]:
    """Reader options given on the command line (only those set)."""
    out: dict[str, Any] = {}
    if fmt:
        out["format"] = fmt
    if on_nonfinite:
        out["on_nonfinite"] = on_nonfinite
    if folds:
        out["folds"] = str(folds)
    if keep_sp:
        out["keep_sp"] = True
    if csd_modality:
        pairs = {}
        for item in csd_modality:
            if "=" not in item:
                fail(f"--csd-modality {item!r} is not of the form ROOT=ROLE")
            root, role = item.split("=", 1)
            pairs[root.strip()] = role.strip()
        out["csd_modalities"] = pairs
    if max_len:
        out["max_len"] = max_len
    return out


FORMAT_OPT = typer.Option(None, "--format", help="Force the data format: mult | mmsa | csd | mfn | own.")
NONFINITE_OPT = typer.Option(None, "--on-nonfinite", help="NaN/inf features: zero (default, warns with counts) | error.")
FOLDS_OPT = typer.Option(None, "--folds", help=".csd: JSON file mapping train, valid and test to lists of video ids.")
KEEP_SP_OPT = typer.Option(False, "--keep-sp", help=".csd: keep 'sp' pause tokens.")
CSD_MOD_OPT = typer.Option(None, "--csd-modality", help=".csd: ROOT=ROLE mapping (text/audio/visual/labels/words/ignore); repeatable.")
MAX_LEN_OPT = typer.Option(None, "--max-len", help=".csd: keep at most this many words per segment.")
THREADS_OPT = typer.Option(
    None, "--threads", help="torch CPU threads (default: MMLATCH_THREADS, else the free cores: cores minus load; OMP_NUM_THREADS wins)."
)
PRECISION_OPT = typer.Option(
    None, "--precision",
    help="Training precision: auto (default: bf16-mixed where the CPU has native bfloat16 and the model was measured to keep its accuracy, else 32) | 32 | bf16-mixed (or bf16) | 16-mixed (CUDA only). Without --eval-precision, 32 and bf16 also set the scoring's.",
)
EVAL_PRECISION_OPT = typer.Option(
    None, "--eval-precision", help="Precision of the valid/test scoring: auto (default, chosen as --precision) | 32 | bf16."
)
INFER_PRECISION_OPT = typer.Option(
    "auto", "--precision",
    help="Inference precision: auto (bf16 where the CPU has native bfloat16 and the model was measured to keep its accuracy, else 32) | 32 | bf16.",
)
COMPILE_OPT = typer.Option(False, "--compile", help="torch.compile the model before training (opt-in; pays off on long runs, mostly on CUDA).")


def precisions(precision: Optional[str], eval_precision: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """``--precision`` of train/experiment: ``bf16`` means bf16-mixed training; without
    ``--eval-precision`` the scoring follows it (``32``: everything in float32; ``bf16`` or
    ``bf16-mixed``: scoring in bf16)."""
    if precision == "bf16":
        precision = "bf16-mixed"
    if eval_precision is None and precision is not None:
        eval_precision = {"32": "32", "bf16-mixed": "bf16"}.get(precision)
    return precision, eval_precision


def threads(threads: Optional[int]) -> None:
    """Give torch the thread count for this command (see mmlatch.training.threads)."""
    if threads is not None and threads < 1:
        fail(f"--threads must be a positive integer, got {threads}")
    from mmlatch.training.threads import configure_threads

    run_guarded(configure_threads, threads)
