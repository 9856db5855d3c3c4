"""The ``mmlatch`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from mmlatch.cli.common import (
    COMPILE_OPT,
    CSD_MOD_OPT,
    EVAL_PRECISION_OPT,
    FOLDS_OPT,
    FORMAT_OPT,
    INFER_PRECISION_OPT,
    KEEP_SP_OPT,
    MAX_LEN_OPT,
    NONFINITE_OPT,
    PRECISION_OPT,
    THREADS_OPT,
)
from mmlatch.cli.common import data_args as _data_args
from mmlatch.cli.common import fail as _fail
from mmlatch.cli.common import precisions as _precisions  # noqa: F401 (tests use it)
from mmlatch.cli.common import print_json as _print_json
from mmlatch.cli.common import require_path as _require_path
from mmlatch.cli.common import require_run as _require_run
from mmlatch.cli.common import run_guarded as _run_guarded
from mmlatch.cli.common import threads as _threads
from mmlatch.rundir import RUN_FILES  # noqa: F401 (the files a finished run has)

app = typer.Typer(
    help="Multimodal sentiment analysis with top-down feedback fusion (MMLatch, HCT-MG, MulT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _setup() -> None:
    """Show warnings (e.g. non-finite values replaced) as one readable line each."""
    import warnings

    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    data: Optional[str] = typer.Option(None, help="'synthetic' or a path to data."),
    model: Optional[str] = typer.Option(None, help="Model name (see `mmlatch models`)."),
    epochs: Optional[int] = typer.Option(None, help="Maximum epochs."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    device: Optional[str] = typer.Option(None, help="auto | cpu | cuda."),
    modalities: Optional[str] = typer.Option(None, help="Comma-separated subset, e.g. audio,visual."),
    out: Path = typer.Option(Path("runs/train"), help="Run directory to write."),
    set_: list[str] = typer.Option([], "--set", help="Override: key=value (e.g. model_args.hidden=50)."),
    progress: bool = typer.Option(True, help="Show progress: a bar on a terminal, else one line per epoch."),
    devices: Optional[int] = typer.Option(None, help="Devices (processes) for one run, e.g. 2 with --strategy ddp."),
    num_nodes: Optional[int] = typer.Option(None, "--num-nodes", help="Nodes for one run (Lightning DDP)."),
    strategy: Optional[str] = typer.Option(None, help="Lightning strategy: auto | ddp | ddp_spawn ..."),
    resume: bool = typer.Option(True, help="Continue an interrupted run in OUT from its last checkpoint (a finished one: nothing to do)."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also log each epoch to OUT/tensorboard (needs the tensorboard package)."),
    keep_last: bool = typer.Option(False, "--keep-last", help="Keep checkpoints/last.ckpt after the run finished."),
    threads: Optional[int] = THREADS_OPT,
    precision: Optional[str] = PRECISION_OPT,
    eval_precision: Optional[str] = EVAL_PRECISION_OPT,
    compile_model: bool = COMPILE_OPT,
    fmt: Optional[str] = FORMAT_OPT,
    on_nonfinite: Optional[str] = NONFINITE_OPT,
    folds: Optional[Path] = FOLDS_OPT,
    keep_sp: bool = KEEP_SP_OPT,
    csd_modality: Optional[list[str]] = CSD_MOD_OPT,
    max_len: Optional[int] = MAX_LEN_OPT,
) -> None:
    """Train a model; writes metrics.json, checkpoints, config.yaml and log/metrics.csv to OUT."""
    _require_path(data)
    if config is not None and not config.is_file():
        _fail(f"config file {str(config)!r} does not exist")
    from mmlatch.training import load_config
    from mmlatch.training import train as run_train

    mods = [m.strip() for m in modalities.split(",") if m.strip()] if modalities else None
    precision, eval_precision = _precisions(precision, eval_precision)
    reader = _data_args(fmt, on_nonfinite, folds, keep_sp, csd_modality, max_len)
    overrides = [*set_, *(f"data_args.{k}={json.dumps(v)}" for k, v in reader.items())]
    cfg = _run_guarded(
        load_config, config, overrides, data=data, model=model, epochs=epochs, seed=seed,
        device=device, modalities=mods, progress=None if progress else False,
        devices=devices, num_nodes=num_nodes, strategy=strategy,
        tensorboard=tensorboard or None, keep_last=keep_last or None, threads=threads,
        precision=precision, eval_precision=eval_precision, compile=compile_model or None,
    )
    result = _run_guarded(run_train, cfg, out, resume=resume)
    if not result:  # a non-zero rank of a distributed run
        return
    typer.echo(f"run directory: {out}")
    _print_json(result)


@app.command()
def evaluate(
    run: Path = typer.Option(..., "--run", help="A finished run directory."),
    data: Optional[str] = typer.Option(None, help="Data to evaluate on (default: the run's)."),
    split: str = typer.Option("test", help="train | valid | test."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    threads: Optional[int] = THREADS_OPT,
    precision: str = INFER_PRECISION_OPT,
) -> None:
    """Load a run's best weights and print its metrics on a split as JSON."""
    _require_run(run)
    _require_path(data)
    _threads(threads)
    from mmlatch.training import evaluate_run

    _print_json(_run_guarded(evaluate_run, run, data, split, device, precision))


@app.command()
def models() -> None:
    """List the registered models with parameter counts at MOSEI dims (300/74/35), one row per
    variant for models with a ``variant`` option."""
    from mmlatch.models import MOSEI_DIMS, count_parameters, create_model, get_entry, list_models, model_arguments
    from mmlatch.models.latefusion import VARIANTS

    rows = []
    for name in list_models():
        default = model_arguments(name).get("variant")
        for variant in [default, *[v for v in VARIANTS if v != default]] if default else [None]:
            n = count_parameters(create_model(name, MOSEI_DIMS, variant=variant))
            label = name if variant is None else f"{name} [{variant}{', default' if variant == default else ''}]"
            rows.append((label, f"{n:,}", get_entry(name).description))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    typer.echo(f"{'model':<{w0}}  {'params':>{w1}}  description")
    for name, n, desc in rows:
        typer.echo(f"{name:<{w0}}  {n:>{w1}}  {desc}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Directory for the two runs."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per model (default: configs/demo.yaml's)."),
    n_train: Optional[int] = typer.Option(None, help="Synthetic training samples (default: configs/demo.yaml's)."),
    seed: int = typer.Option(0, help="Random seed."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    threads: Optional[int] = THREADS_OPT,
) -> None:
    """Train baseline and mmlatch on the synthetic data (configs/demo.yaml, about a minute on
    2 CPU cores); print their test metrics side by side and write mmlatch's mask heatmap."""
    import time

    from mmlatch.training import load_config
    from mmlatch.training import train as run_train

    started = time.perf_counter()
    demo_cfg = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    overrides = [f"data_args.n_train={n_train}"] if n_train is not None else []
    results = {}
    for name in ("baseline", "mmlatch"):
        cfg = _run_guarded(
            load_config, demo_cfg, overrides, model=name, epochs=epochs,
            seed=seed, device=device, progress=True, threads=threads,
        )
        typer.echo(f"training {name} on synthetic data ({cfg.epochs} epochs) -> {out / name}")
        results[name] = _run_guarded(run_train, cfg, out / name)
    png = _run_guarded(_demo_masks, out / "mmlatch", device)
    base, ours = results["baseline"]["test"], results["mmlatch"]["test"]
    typer.echo("")
    typer.echo(f"test metrics, synthetic data, seed {seed} (mae: lower is better; the others: higher)")
    width = max(len("metric"), *(len(k) for k in base))
    typer.echo(f"{'metric':<{width}} {'baseline':>10} {'mmlatch':>10}")
    for k in base:
        typer.echo(f"{k:<{width}} {_cell(base[k])} {_cell(ours[k])}")
    gain = (base["mae"] - ours["mae"]) / base["mae"] * 100
    typer.echo(f"MMLatch's top-down masks: test MAE {ours['mae']:.3f} vs {base['mae']:.3f} "
               f"({abs(gain):.1f}% {'lower' if gain >= 0 else 'higher'} error than the baseline)")
    typer.echo(f"mask heatmap (average mask on visual per sentiment class): {png}")
    typer.echo(f"demo took {time.perf_counter() - started:.0f} s; `mmlatch report --run {out / 'mmlatch'}` shows the whole run")


def _cell(value: Any) -> str:
    return f"{value:>10.4f}" if value is not None else f"{'null':>10}"


def _demo_masks(run: Path, device: str) -> Path:
    """The demo's mask heatmap: mmlatch's average mask on visual per class (test split)."""
    from mmlatch.analysis.collect import default_out, load_run_data
    from mmlatch.analysis.masks import mask_table, plot_mask_table
    from mmlatch.training.run import resolve_device

    rd = load_run_data(run)
    table = mask_table(rd, "test", "visual", device=resolve_device(device))
    png, _ = plot_mask_table(table, default_out(run, "masks_visual.png"), "mmlatch: average mask on visual (test)")
    return png


data_app = typer.Typer(help="Inspect and convert datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _load_for_cli(path: str, modalities: Optional[str], reader: dict[str, Any]) -> Any:
    from mmlatch.data import load_dataset

    mods = [m.strip() for m in modalities.split(",") if m.strip()] if modalities else None
    return _run_guarded(load_dataset, path, modalities=mods, **reader)


@data_app.command("inspect")
def data_inspect(
    path: str = typer.Argument(..., help="'synthetic' or a path to data."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    modalities: Optional[str] = typer.Option(None, help="Comma-separated subset."),
    fmt: Optional[str] = FORMAT_OPT,
    on_nonfinite: Optional[str] = NONFINITE_OPT,
    folds: Optional[Path] = FOLDS_OPT,
    keep_sp: bool = KEEP_SP_OPT,
    csd_modality: Optional[list[str]] = CSD_MOD_OPT,
    max_len: Optional[int] = MAX_LEN_OPT,
) -> None:
    """Print format, splits, sizes, feature dims, lengths, labels and non-finite counts."""
    _require_path(path)
    from mmlatch.data.inspect import describe_dataset, format_description

    ds = _load_for_cli(path, modalities, _data_args(fmt, on_nonfinite, folds, keep_sp, csd_modality, max_len))
    desc = describe_dataset(ds)
    if as_json:
        _print_json(desc)
    else:
        typer.echo(format_description(desc))


@data_app.command("convert")
def data_convert(
    path: str = typer.Argument(..., help="'synthetic' or a path to data."),
    out: Path = typer.Option(..., "--out", help="Output file (.npz), readable by every command."),
    modalities: Optional[str] = typer.Option(None, help="Comma-separated subset."),
    fmt: Optional[str] = FORMAT_OPT,
    on_nonfinite: Optional[str] = NONFINITE_OPT,
    folds: Optional[Path] = FOLDS_OPT,
    keep_sp: bool = KEEP_SP_OPT,
    csd_modality: Optional[list[str]] = CSD_MOD_OPT,
    max_len: Optional[int] = MAX_LEN_OPT,
) -> None:
    """Read any supported format once and write the project's own .npz format."""
    _require_path(path)
    from mmlatch.data.convert import save_dataset

    ds = _load_for_cli(path, modalities, _data_args(fmt, on_nonfinite, folds, keep_sp, csd_modality, max_len))
    written = _run_guarded(save_dataset, ds, out)
    typer.echo(f"wrote {written} ({', '.join(f'{k} {len(v)}' for k, v in ds.splits.items())})")


from mmlatch.cli import analysis_cmds, experiment_cmds, extract_cmds, import_cmds, verify_cmds  # noqa: E402

experiment_cmds.register(app)
analysis_cmds.register(app)
extract_cmds.register(app)
import_cmds.register(app)
verify_cmds.register(app)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
