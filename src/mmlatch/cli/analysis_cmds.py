"""Commands that look inside and use finished runs: ``analyze ...``, ``robustness``,
``predict``, ``export``. Wired into the main app by :func:`register`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from mmlatch.cli import common as cli
from mmlatch.cli.common import FORMAT_OPT, INFER_PRECISION_OPT

RUN_OPT = typer.Option(..., "--run", help="A finished run directory.")
RUNS_OPT = typer.Option(..., "--run", help="A finished run directory; repeat to compare runs.")
DATA_OPT = typer.Option(None, "--data", help="Data to use (default: the run's own).")
SPLIT_OPT = typer.Option("test", "--split", help="train | valid | test.")
DEVICE_OPT = typer.Option("auto", "--device", help="auto | cpu | cuda.")



def _reader(fmt: Optional[str]) -> dict[str, Any]:
    return {"format": fmt} if fmt else {}


def _device(device: str) -> str:
    from mmlatch.training.run import resolve_device

    return cli.run_guarded(resolve_device, device)


def register(app: typer.Typer) -> None:
    """Add ``analyze`` (masks, gates, routing, incongruity, curves), ``robustness``, ``predict``,
    ``export`` and ``report`` to ``app``."""
    analyze = typer.Typer(help="Plots and tables from finished runs.", no_args_is_help=True)
    app.add_typer(analyze, name="analyze")
    _add_per_run_analyses(analyze)
    _add_comparisons(analyze)
    _add_run_commands(app)
    _add_outputs(app)


def _add_per_run_analyses(analyze: typer.Typer) -> None:
    """``analyze masks``, ``analyze gates``, ``analyze routing``."""

    @analyze.command("masks")
    def masks(
        run: Path = RUN_OPT,
        data: Optional[str] = DATA_OPT,
        split: str = SPLIT_OPT,
        modality: Optional[str] = typer.Option(None, "--modality", help="Masked modality (default: visual, else the first)."),
        out: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default RUN/analysis/masks_<modality>.png); the CSV goes beside it."),
        fmt: Optional[str] = FORMAT_OPT,
        device: str = DEVICE_OPT,
    ) -> None:
        """Top-down mask averaged per rounded sentiment class: heatmap (features x classes) + CSV."""
        cli.require_run(run)
        cli.require_path(data)
        from mmlatch.analysis.collect import default_out, load_run_data
        from mmlatch.analysis.masks import default_modality, mask_table, plot_mask_table

        dev = _device(device)
        rd = cli.run_guarded(load_run_data, run, data, _reader(fmt))
        mod = modality or default_modality(rd.modalities)
        table = cli.run_guarded(mask_table, rd, split, mod, device=dev)
        png = out or default_out(run, f"masks_{mod}.png")
        png, csv = plot_mask_table(table, png, f"{rd.label}: mask on {mod} ({split})")
        cli.print_json({"png": str(png), "csv": str(csv), "modality": mod,
                         "counts": dict(zip(table.classes, table.counts.tolist()))})

    @analyze.command("gates")
    def gates(
        run: Path = RUN_OPT,
        out: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default RUN/analysis/gates.png); the CSV goes beside it."),
    ) -> None:
        """Gate weights over training and the primary modality per epoch (HCT-MG)."""
        from mmlatch.analysis.collect import default_out
        from mmlatch.analysis.gates import gate_history, plot_gates

        history = cli.run_guarded(gate_history, run)
        png, csv = plot_gates(history, out or default_out(run, "gates.png"), f"{Path(run).name}: modality gate")
        cli.print_json({"png": str(png), "csv": str(csv), "primary": dict(zip(map(int, history.index), history["primary"]))})

    @analyze.command("routing")
    def routing(
        run: Path = RUN_OPT,
        data: Optional[str] = DATA_OPT,
        split: str = SPLIT_OPT,
        out: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default RUN/analysis/routing.png); the CSV goes beside it."),
        fmt: Optional[str] = FORMAT_OPT,
        device: str = DEVICE_OPT,
    ) -> None:
        """Multimodal Routing: mean routing coefficients (features x concepts) per class + CSV."""
        from mmlatch.analysis.collect import default_out, load_run_data
        from mmlatch.analysis.routing import plot_routing, routing_table

        cli.require_run(run)
        cli.require_path(data)
        dev = _device(device)
        rd = cli.run_guarded(load_run_data, run, data, _reader(fmt))
        table = cli.run_guarded(routing_table, rd, split, device=dev)
        png, csv = plot_routing(table, out or default_out(run, "routing.png"), f"{rd.label}: routing ({split})")
        counts = table.drop_duplicates("class").set_index("class")["count"]
        cli.print_json({"png": str(png), "csv": str(csv), "counts": {k: int(v) for k, v in counts.items()}})


def _add_comparisons(analyze: typer.Typer) -> None:
    """``analyze incongruity`` and ``analyze curves`` (several runs)."""

    @analyze.command("incongruity")
    def incongruity(
        run: list[Path] = RUNS_OPT,
        reference: Optional[Path] = typer.Option(None, "--reference", help="Group every run's samples by this (HCT-MG) run's unimodal predictions."),
        data: Optional[str] = DATA_OPT,
        split: str = SPLIT_OPT,
        out: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default FIRST_RUN/analysis/incongruity.png); the CSV goes beside it."),
        fmt: Optional[str] = FORMAT_OPT,
        device: str = DEVICE_OPT,
        latent: bool = typer.Option(False, "--latent", help="Also: how crossmodal attention changes the primary's affective reading (HCT-MG, MulT runs): <out>_latent.png + CSV."),
    ) -> None:
        """Error on samples whose unimodal predictions disagree in sign (incongruent) or agree."""
        cli.require_run(*run)
        cli.require_path(data)
        from mmlatch.analysis.collect import default_out
        from mmlatch.analysis.incongruity import incongruity_table, plot_incongruity

        table = cli.run_guarded(incongruity_table, run, reference, data, split, _reader(fmt), device=_device(device))
        png, csv = plot_incongruity(table, out or default_out(run[0], "incongruity.png"))
        result = {"png": str(png), "csv": str(csv), "table": table.to_dict(orient="records")}
        if latent:
            from mmlatch.analysis.latent import latent_table, plot_latent

            lat = cli.run_guarded(latent_table, run, reference, data, split, _reader(fmt), device=_device(device))
            lpng, lcsv = plot_latent(lat, Path(png).with_name(f"{Path(png).stem}_latent.png"))
            result["latent"] = {"png": str(lpng), "csv": str(lcsv), "table": lat.to_dict(orient="records")}
        cli.print_json(result)

    @analyze.command("curves")
    def curves(
        run: list[Path] = RUNS_OPT,
        metric: str = typer.Option("mae", "--metric", help="Validation metric of the right panel."),
        out: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default FIRST_RUN/analysis/curves.png); the CSV goes beside it."),
    ) -> None:
        """Loss and a validation metric per epoch, several runs overlaid."""
        from mmlatch.analysis.collect import default_out
        from mmlatch.analysis.curves import plot_curves, training_curves

        table = cli.run_guarded(training_curves, run, metric)
        png, csv = plot_curves(table, out or default_out(run[0], "curves.png"), metric)
        cli.print_json({"png": str(png), "csv": str(csv), "runs": list(dict.fromkeys(table["run"]))})


def _add_run_commands(app: typer.Typer) -> None:
    """``robustness`` and ``predict``."""

    @app.command("robustness")
    def robustness(
        run: list[Path] = RUNS_OPT,
        out: Path = typer.Option(..., "--out", help="Directory for robustness.csv, .png and .json."),
        data: Optional[str] = DATA_OPT,
        modality: str = typer.Option("all", "--modality", help="The modality to corrupt, or all."),
        corruption: str = typer.Option("noise,drop,missing", "--corruption", help="Comma-separated: noise, drop, missing."),
        levels: str = typer.Option(",".join(f"{0.1 * i:.1f}" for i in range(10)), "--levels", help="Comma-separated levels in [0, 1]."),
        seed: int = typer.Option(0, "--seed", help="Seed of the corruptions."),
        metric: str = typer.Option("mae", "--metric", help="Metric of the plot and the AUC."),
        split: str = SPLIT_OPT,
        fmt: Optional[str] = FORMAT_OPT,
        device: str = DEVICE_OPT,
        precision: str = INFER_PRECISION_OPT,
    ) -> None:
        """Test-time corruption at levels 0..0.9: metrics per level, metric-vs-level plot, AUC per run."""
        cli.require_run(*run)
        cli.require_path(data)
        from mmlatch.analysis.robustness import run_robustness

        try:
            level_values = [float(v) for v in levels.split(",") if v.strip()]
        except ValueError:
            cli.fail(f"--levels {levels!r} is not a comma-separated list of numbers")
        result = cli.run_guarded(
            run_robustness, run, out, metric, data=data,
            corruptions=[c.strip() for c in corruption.split(",") if c.strip()],
            modality=modality, levels=level_values, seed=seed, split=split,
            reader_options=_reader(fmt), device=_device(device), precision=precision,
        )
        cli.print_json(result)

    @app.command("predict")
    def predict(
        run: Path = RUN_OPT,
        data: Optional[str] = typer.Option(None, "--data", help="A data file/directory in any readable format; labels optional."),
        out: Optional[Path] = typer.Option(None, "--out", help="CSV to write (default: print the CSV)."),
        split: Optional[str] = typer.Option(None, "--split", help="Only this split (default: every split in the file)."),
        fmt: Optional[str] = FORMAT_OPT,
        batch_size: int = typer.Option(64, "--batch-size", help="Samples per forward pass."),
        device: str = DEVICE_OPT,
        media: Optional[Path] = typer.Option(None, "--media", help="Instead of --data: one audio/video file, extracted with the run's spec (prints JSON)."),
        transcript: Optional[str] = typer.Option(None, "--transcript", help="With --media: the words said (text or a text file); alone for a text-only run."),
        words: Optional[Path] = typer.Option(None, "--words", help="With --media: word timings (CSV word,start,end or JSON)."),
        threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: fit the free cores; see mmlatch train --help)."),
        precision: str = INFER_PRECISION_OPT,
        engine: str = typer.Option("torch", "--engine", help="torch | onnx | onnx-int8 (onnxruntime on CPU, float32 or int8: faster, predictions only, no mask means)."),
    ) -> None:
        """Predict every sample of a data file: CSV of ids, predictions (and mask means)."""
        cli.require_run(run)
        cli.require_path(data)
        cli.threads(threads)
        from mmlatch.analysis.predict import load_run, predict_file

        predictor = cli.run_guarded(load_run, run, device, precision, engine=engine)
        if data is None or media is not None or transcript is not None:  # one clip from raw media
            from mmlatch.cli.extract_cmds import predict_media_cmd

            predict_media_cmd(predictor, data, media, transcript, words)
            return
        from mmlatch.analysis.media import check_data_spec

        cli.run_guarded(check_data_spec, predictor, data)
        table = cli.run_guarded(predict_file, predictor, data, split, _reader(fmt), batch_size)
        if out is None:
            typer.echo(table.to_csv(index=False), nl=False)
            return
        from mmlatch.files import write_text

        write_text(out, table.to_csv(index=False))
        typer.echo(f"wrote {len(table)} predictions to {out}")


def _add_outputs(app: typer.Typer) -> None:
    """``export`` and ``report``."""

    @app.command("export")
    def export(
        run: Path = RUN_OPT,
        fmt: str = typer.Option(..., "--format", help="onnx | torchscript."),
        out: Path = typer.Option(..., "--out", help="File to write (a description goes to FILE.json)."),
        per_modality_lengths: bool = typer.Option(False, "--per-modality-lengths", help="One lengths input per modality (unaligned models)."),
        verify: bool = typer.Option(True, help="Check the exported model against PyTorch on two batch shapes."),
        atol: float = typer.Option(1e-5, "--atol", help="Largest allowed absolute difference in the check."),
    ) -> None:
        """Export the run's model to ONNX or TorchScript (inputs: modality tensors + lengths)."""
        cli.require_run(run)
        from mmlatch.analysis.export import export_run

        cli.print_json(cli.run_guarded(export_run, run, fmt, out, per_modality_lengths, verify, atol))

    @app.command("report")
    def report(
        run: Optional[Path] = typer.Option(None, "--run", help="A finished run directory."),
        experiment: Optional[Path] = typer.Option(None, "--experiment", help="An experiment directory (runs/<name>/seed<k>/)."),
        out: Optional[Path] = typer.Option(None, "--out", help="HTML file to write (default RUN/report.html or EXPERIMENT/report.html)."),
        device: str = DEVICE_OPT,
    ) -> None:
        """One self-contained HTML page: settings, data identity, metrics, curves, masks, gate, environment."""
        if (run is None) == (experiment is None):
            cli.fail("give one of --run DIR or --experiment DIR")
        if run is not None:
            cli.require_run(run)
        elif not Path(experiment).is_dir():
            cli.fail(f"{experiment}: no such directory")
        from mmlatch.analysis.report import experiment_report, run_report

        dev = _device(device)
        if run is not None:
            path = cli.run_guarded(run_report, run, out, dev)
        else:
            path = cli.run_guarded(experiment_report, experiment, out, dev)
        typer.echo(f"report: {path}")


__all__ = ["register"]
