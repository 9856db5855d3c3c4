"""One self-contained HTML page about a finished run or a multi-seed experiment.

The page (``report.html``) holds the settings (``config.yaml``, ``model.json``), the data's
identity (path, shapes per split and modality, a content fingerprint), the metrics (every
number of ``metrics.json``, named with its convention, see :mod:`mmlatch.metrics`), the
learning curves from ``log/metrics.csv``, the average top-down mask per class for top-down
models (:mod:`mmlatch.analysis.masks`), the modality gate over training for HCT-MG
(:mod:`mmlatch.analysis.gates`) and ``environment.json``. Figures are PNGs embedded as
base64 ``data:`` URIs and the style sheet is inline: no script, no network, the file opens
from disk anywhere. Every metric cell carries its exact value in ``data-value`` (the shown
text is rounded to 4 decimals).

The content fingerprint is the SHA-256 of the data as read (every split's features,
lengths, labels and ids, in order), so the same data gives the same fingerprint whatever
file format it came in.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmlatch import rundir
from mmlatch.analysis.collect import AnalysisError, load_run_data, read_epoch_log
from mmlatch.files import write_text

#: what each metric name means (mmlatch.metrics, docs/guide/metrics.md); per-column metrics
#: (``mae_<col>``, ``acc_<emotion>`` ...) are named by their prefix
METRIC_CONVENTIONS: dict[str, str] = {
    "mae": "mean absolute error",
    "corr": "Pearson correlation (null: constant predictions)",
    "acc7": "7-class accuracy: clip to [-3, 3], round half to even",
    "acc5": "5-class accuracy: clip to [-2, 2], round half to even",
    "acc2": "binary accuracy, non0 convention (label-0 samples dropped, > 0 positive)",
    "f1": "weighted F1, labels as reference (scikit-learn), non0 convention",
    "f1_published": "weighted F1, predictions first (MulT/MMLatch papers' F1), non0 convention",
    "acc2_has0": "binary accuracy, has0 convention (all samples, zeros positive)",
    "f1_has0": "weighted F1, labels as reference, has0 convention",
    "f1_has0_published": "weighted F1, predictions first, has0 convention",
    "acc2_has0_neg": "binary accuracy, has0_neg convention (all samples, zeros negative)",
    "f1_has0_neg": "weighted F1, labels as reference, has0_neg convention",
    "f1_has0_neg_published": "weighted F1, predictions first, has0_neg convention",
    "acc": "accuracy",
    "loss": "the training loss on the split",
}
_PREFIXES = {"mae_": "mean absolute error of column", "corr_": "Pearson correlation of column",
             "acc_": "binary accuracy of label", "f1_": "F1 of label"}

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-family: monospace; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; } .note { color: #555; font-size: 0.9em; }
"""


def metric_convention(name: str) -> str:
    """The convention a metric name stands for (``""`` when unknown)."""
    if name in METRIC_CONVENTIONS:
        return METRIC_CONVENTIONS[name]
    for prefix, text in _PREFIXES.items():
        if name.startswith(prefix):
            return f"{text} {name[len(prefix):]}"
    return ""


def data_fingerprint(dataset: Any) -> str:
    """``sha256:<hex>`` of a dataset's content: per split (sorted), per modality (model
    order), features, lengths, then labels and ids."""
    h = hashlib.sha256()
    for name in sorted(dataset.splits):
        split = dataset.splits[name]
        h.update(name.encode())
        for m in split.features:
            h.update(m.encode())
            h.update(np.ascontiguousarray(split.features[m], np.float32).tobytes())
            h.update(np.ascontiguousarray(split.lengths[m], np.int64).tobytes())
        h.update(np.ascontiguousarray(split.labels, np.float32).tobytes())
        h.update("\0".join(map(str, split.ids)).encode())
    return f"sha256:{h.hexdigest()}"


def data_identity(dataset: Any, path: str) -> dict[str, Any]:
    """Path, fingerprint and shapes (``split -> modality -> [N, L, F]``, ``labels``)."""
    shapes = {
        name: {**{m: list(x.shape) for m, x in s.features.items()}, "labels": list(s.labels.shape)}
        for name, s in dataset.splits.items()
    }
    return {"path": path, "name": dataset.name, "fingerprint": data_fingerprint(dataset), "shapes": shapes}


def _png(fig: Any) -> str:
    """A matplotlib figure as a base64 PNG ``data:`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(uri: str, caption: str, kind: str) -> str:
    return (f'<figure class="{kind}"><img alt="{html.escape(caption)}" src="{uri}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _flat(values: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Nested mappings as ``(a.b.c, value)`` rows."""
    if isinstance(values, dict) and values:
        for k, v in values.items():
            yield from _flat(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, values


def _kv_table(values: dict[str, Any], cls: str) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in _flat(values)
    )
    return f'<table class="{cls}">{rows}</table>'


def _number(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "null"
    return f"{float(v):.4f}"


def _metrics_table(metrics: dict[str, Any]) -> str:
    """Rows: metric (with its convention); columns: valid, test; exact values in data-value."""
    splits = [s for s in ("valid", "test") if isinstance(metrics.get(s), dict) and metrics[s]]
    names = list(dict.fromkeys(k for s in splits for k in metrics[s]))
    head = "<tr><th>metric</th><th>convention</th>" + "".join(f"<th>{s}</th>" for s in splits) + "</tr>"
    rows = []
    for name in names:
        cells = []
        for s in splits:
            v = metrics[s].get(name)
            exact = "null" if v is None else repr(float(v))
            cells.append(f'<td class="num metric" data-split="{s}" data-metric="{html.escape(name)}" '
                         f'data-value="{exact}">{_number(v)}</td>')
        rows.append(f"<tr><th>{html.escape(name)}</th><td>{html.escape(metric_convention(name))}</td>{''.join(cells)}</tr>")
    return f'<table class="metrics">{head}{"".join(rows)}</table>'


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _data_section(run_dir: Path, note_missing: bool = True) -> tuple[str, Any]:
    """The data identity section of a run, and the RunData (None when the data is gone)."""
    from mmlatch.training.config import read_yaml

    cfg = read_yaml(run_dir / "config.yaml")
    path = str(cfg.get("data", ""))
    try:
        rd = load_run_data(run_dir)
    except Exception as exc:  # the data moved or changed: the page says so instead of failing
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (f'<table class="data"><tr><th>path</th><td>{html.escape(path)}</td></tr></table>'
                f'<p class="note">data not readable now, so no shapes or fingerprint: {html.escape(text)}</p>'), None
    ident = data_identity(rd.dataset, path)
    rows = [f"<tr><th>path</th><td>{html.escape(path)}</td></tr>",
            f"<tr><th>reader options</th><td>{html.escape(json.dumps(cfg.get('data_args') or {}))}</td></tr>",
            f'<tr><th>fingerprint</th><td class="fingerprint">{ident["fingerprint"]}</td></tr>']
    mods = list(rd.dataset.modalities)
    head = "<tr><th>split</th>" + "".join(f"<th>{html.escape(m)} (N, L, F)</th>" for m in mods) + "<th>labels</th></tr>"
    body = "".join(
        f"<tr><th>{html.escape(s)}</th>" + "".join(f"<td>{tuple(shape[m])}</td>" for m in mods)
        + f"<td>{tuple(shape['labels'])}</td></tr>"
        for s, shape in ident["shapes"].items()
    )
    return f'<table class="data">{"".join(rows)}</table><table class="shapes">{head}{body}</table>', rd


def _mask_figures(rd: Any, label: str, device: str) -> list[str]:
    """Mask heatmaps (test split) of a top-down run's modalities of <= 100 features (else the
    default one); empty for models without masks."""
    from mmlatch.analysis.masks import default_modality, mask_figure, mask_table

    mods = [m for m in rd.modalities if rd.spec["modality_dims"][m] <= 100] or [default_modality(rd.modalities)]
    out = []
    for m in mods:
        try:
            table = mask_table(rd, "test", m, device=device)
        except AnalysisError:
            return []
        out.append(_figure(_png(mask_figure(table, f"{label}: average mask on {m} per class (test)")),
                           f"{label}: average top-down mask on {m}, per rounded label class, test split", "mask"))
    return out


def _gate_figure(run_dir: Path, label: str) -> list[str]:
    from mmlatch.analysis.gates import gate_history, gates_figure

    try:
        history = gate_history(run_dir)
    except AnalysisError:
        return []
    return [_figure(_png(gates_figure(history, f"{label}: modality gate")),
                    f"{label}: mean gate weight per modality and the primary modality, per epoch", "gate")]


def _curves_figure(runs: list[Path], labels: list[str], metric: str) -> str:
    from mmlatch.analysis.curves import curves_figure

    parts = []
    for run, label in zip(runs, labels):
        log = read_epoch_log(run)
        col = f"val_{metric}"
        part = log.reindex(columns=["train_loss", "val_loss", col]).reset_index()
        part.insert(0, "run", label)
        parts.append(part)
    curves = pd.concat(parts, ignore_index=True)
    return _figure(_png(curves_figure(curves, metric)),
                   f"learning curves from log/metrics.csv: loss and validation {metric} per epoch", "curves")


def _curve_metric(run: Path) -> str:
    log = read_epoch_log(run)
    for m in ("mae", "acc", "f1"):
        if f"val_{m}" in log.columns:
            return m
    return "loss"


def _page(title: str, sections: list[tuple[str, str]]) -> str:
    body = "".join(f'<section id="{html.escape(sid)}"><h2>{html.escape(name)}</h2>{content}</section>'
                   for sid, name, content in ((n.lower().split()[0], n, c) for n, c in sections))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def run_report(run_dir: str | Path, out: str | Path | None = None, device: str = "cpu") -> Path:
    """Write the page of one finished run (default ``RUN/report.html``); returns its path."""
    run = Path(run_dir)
    rundir.require_run_files(run, (rundir.METRICS, rundir.CONFIG, rundir.MODEL_JSON))
    metrics = json.loads((run / "metrics.json").read_text())
    spec = json.loads((run / "model.json").read_text())
    from mmlatch.training.config import read_yaml

    config = read_yaml(run / "config.yaml")
    data_html, rd = _data_section(run)
    label = run.name
    summary = {k: metrics.get(k) for k in ("model", "seed", "params", "best_epoch", "epochs_run")}
    timing = _read_json(run / "timing.json") or {}
    summary["training seconds"] = round(float(timing["seconds"]), 1) if timing.get("seconds") is not None else None
    std = spec.get("standardize")
    model_info = {"model": spec.get("model"), "modality_dims": spec.get("modality_dims"),
                  "task": spec.get("task"), "model_args": spec.get("model_args"),
                  "standardised modalities": list(std["mean"]) if std else [],
                  "standardize auto reasons": spec.get("standardize_auto", "not auto"),
                  "training defaults of the model used": spec.get("training_defaults", "none (the generic ones or the config's)")}
    figures = [_curves_figure([run], [label], _curve_metric(run))]
    if rd is not None:
        figures += _mask_figures(rd, label, device)
    figures += _gate_figure(run, label)
    env = _read_json(run / "environment.json")
    sections = [
        ("Summary", _kv_table(summary, "summary")),
        ("Metrics", _metrics_table(metrics)),
        ("Figures", "".join(figures)),
        ("Settings", "<h3>config.yaml</h3>" + _kv_table(config, "settings")
         + "<h3>model.json</h3>" + _kv_table(model_info, "model")),
        ("Data", data_html),
        ("Environment", _kv_table(env, "environment") if env else '<p class="note">no environment.json</p>'),
    ]
    path = Path(out) if out else run / "report.html"
    write_text(path, _page(f"mmlatch run report: {run.resolve()}", sections))
    return path


def _experiment_runs(exp: Path) -> dict[str, list[Path]]:
    """name -> finished run directories (``runs/<name>/seed<k>``), seeds in order."""
    groups: dict[str, list[Path]] = {}
    for d in sorted((exp / "runs").glob("*/seed*"), key=lambda p: (p.parent.name, int(p.name[4:]) if p.name[4:].isdigit() else 0)):
        if (d / "metrics.json").is_file():
            groups.setdefault(d.parent.name, []).append(d)
    return groups


def experiment_report(exp_dir: str | Path, out: str | Path | None = None, device: str = "cpu") -> Path:
    """Write the page of an experiment directory (default ``EXP/report.html``): its summary
    table, every run's metrics per seed, curves per run (seeds overlaid), the mask heatmap and
    gate of its first seed; returns the path."""
    from mmlatch.training.config import read_yaml
    from mmlatch.training.experiment import summary_table

    exp = Path(exp_dir)
    groups = _experiment_runs(exp)
    if not groups:
        raise AnalysisError(f"{exp}: no finished runs under runs/<name>/seed<k>/: is it an experiment directory?")
    rows = []
    for name, runs in groups.items():
        for run in runs:
            m = json.loads((run / "metrics.json").read_text())
            rows.append({"name": name, "seed": m.get("seed"), "best_epoch": m.get("best_epoch"),
                         **{f"test_{k}": v for k, v in (m.get("test") or {}).items()}})
    results = pd.DataFrame(rows)
    table = summary_table(results, "csv")
    summary_html = pd.read_csv(io.StringIO(table)).to_html(index=False, classes="summary", border=0)
    metric_cols = [c for c in results.columns if c.startswith("test_")]
    head = "<tr><th>run</th><th>seed</th><th>best epoch</th>" + "".join(
        f'<th title="{html.escape(metric_convention(c[5:]))}">{html.escape(c[5:])}</th>' for c in metric_cols) + "</tr>"
    body = []
    for _, r in results.iterrows():
        cells = []
        for c in metric_cols:
            v = r[c]
            v = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
            cells.append(f'<td class="num metric" data-run="{html.escape(r["name"])}" data-seed="{int(r["seed"])}" '
                         f'data-metric="{html.escape(c[5:])}" data-value="{"null" if v is None else repr(v)}">{_number(v)}</td>')
        body.append(f'<tr><th>{html.escape(r["name"])}</th><td>{int(r["seed"])}</td><td>{r["best_epoch"]}</td>{"".join(cells)}</tr>')
    conventions = "".join(f"<tr><th>{html.escape(c[5:])}</th><td>{html.escape(metric_convention(c[5:]))}</td></tr>"
                          for c in metric_cols)
    figures, settings, data_parts, seen_data = [], [], [], set()
    for name, runs in groups.items():
        figures.append(f"<h3>{html.escape(name)}</h3>")
        figures.append(_curves_figure(runs, [f"seed {json.loads((r / 'metrics.json').read_text()).get('seed')}" for r in runs],
                                      _curve_metric(runs[0])))
        cfg = read_yaml(runs[0] / "config.yaml")
        cfg.pop("seed", None)
        settings.append(f"<h3>{html.escape(name)}</h3>" + _kv_table(cfg, "settings"))
        key = (str(cfg.get("data")), json.dumps(cfg.get("data_args"), sort_keys=True), json.dumps(cfg.get("modalities")))
        data_html, rd = _data_section(runs[0])
        if key not in seen_data:
            seen_data.add(key)
            data_parts.append(f"<h3>{html.escape(name)}</h3>" + data_html)
        if rd is not None:
            figures += _mask_figures(rd, f"{name} seed {rd.config.seed}", device)
        figures += _gate_figure(runs[0], f"{name} seed {json.loads((runs[0] / 'metrics.json').read_text()).get('seed')}")
    env = _read_json(next(iter(groups.values()))[0] / "environment.json")
    sections = [
        ("Summary", summary_html + '<p class="note">' + html.escape(summary_table(results, "md").strip().splitlines()[-1]) + "</p>"),
        ("Metrics", f'<table class="metrics">{head}{"".join(body)}</table>'
                    f'<table class="conventions"><tr><th>metric</th><th>convention</th></tr>{conventions}</table>'),
        ("Figures", "".join(figures)),
        ("Settings", "".join(settings)),
        ("Data", "".join(data_parts)),
        ("Environment", _kv_table(env, "environment") if env else '<p class="note">no environment.json</p>'),
    ]
    path = Path(out) if out else exp / "report.html"
    write_text(path, _page(f"mmlatch experiment report: {exp.resolve()}", sections))
    return path


__all__ = [
    "METRIC_CONVENTIONS",
    "data_fingerprint",
    "data_identity",
    "experiment_report",
    "metric_convention",
    "run_report",
]
