"""Experiments: several runs (model x data x overrides), each repeated over seeds.

An experiment file (YAML)::

    name: table1-synthetic
    config: ../synthetic.yaml      # base run config, relative to this file (optional)
    data: synthetic                # the data parameter: --data replaces it
    seeds: 5                       # seeds 0..4 (or a list); --seeds replaces it
    set: ["epochs=30"]             # overrides for every run
    runs:
      - {name: baseline, model: baseline}
      - {name: mmlatch, model: mmlatch, set: ["model_args.stage1_grad=false"]}
      - {name: mult, model: mult, config: ../mosei/mult.yaml}   # per-run base config

The output directory holds ``runs/<name>/seed<k>/`` (each a normal ``train`` run
directory), ``results.csv`` (one row per finished run) and ``table.md`` (mean +/- std over
seeds and the best-of-N run). Both are rewritten atomically after every finished run. A
re-run skips finished runs and resumes interrupted ones from their last checkpoint, so
killing the process at any moment loses at most the epoch in progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from mmlatch.files import write_text
from mmlatch.training.config import ConfigError, TrainConfig, apply_overrides, read_yaml
from mmlatch.training.threads import choose_threads, machine_cores, machine_load

TABLE_COLUMNS: list[tuple[str, str, float, int]] = [
    # (metric, header, scale, decimals); "F1" is the published convention (see mmlatch.metrics)
    ("acc7", "Acc7", 100.0, 2),
    ("acc2", "Acc2", 100.0, 2),
    ("f1_published", "F1", 100.0, 2),
    ("f1", "F1 (sklearn)", 100.0, 2),
    ("acc", "Acc", 100.0, 2),
    ("mae", "MAE", 1.0, 3),
    ("corr", "Corr", 1.0, 3),
]


def table_note(headers: set[str], spread: bool = True, best_rows: bool = True) -> str:
    """The footnote of a table showing the columns ``headers``: how to read each shown
    column (the binary convention and the F1 definition of Acc2, F1, F1 (sklearn)).
    ``spread``: rows are means over several seeds; ``best_rows``: best-of-N rows are shown."""
    note = "Mean ± sample std over seeds." if spread else "One seed per run."
    if headers & {"Acc7", "Acc2", "F1", "F1 (sklearn)", "Acc"}:
        note += " Accuracies and F1 in %."
    if "Acc2" in headers:
        note += " Acc2: non0 convention (samples with label 0 excluded, > 0 positive)."
    if "F1" in headers:
        note += (
            " F1: non0 convention, weighted F1 as MulT's and MMLatch's code compute it and"
            " their papers report it, f1_score(pred > 0, label > 0, average=\"weighted\")"
            " (classes weighted by their predicted counts)."
        )
    if "F1 (sklearn)" in headers:
        sentiment = bool(headers & {"Acc2", "F1", "Acc7"})
        note += (
            " F1 (sklearn): scikit-learn's weighted F1 with the labels as reference, "
            + ("non0 convention, f1_score(label > 0, pred > 0, average=\"weighted\")"
               if sentiment else "f1_score(label, pred, average=\"weighted\")")
            + " (classes weighted by their label counts)."
        )
    if best_rows:
        note += " \"Best of N\": the seed with the lowest test MAE, as the MMLatch paper reports it."
    return note


@dataclass
class RunSpec:
    """One row of an experiment: a model on data with overrides."""

    name: str
    model: str
    config: str | None = None
    data: str | None = None
    modalities: list[str] | None = None
    overrides: list[str] = field(default_factory=list)


@dataclass
class Experiment:
    """Runs, seeds and the settings shared by all runs."""

    name: str
    runs: list[RunSpec]
    seeds: list[int]
    config: str | None = None
    data: str | None = None
    modalities: list[str] | None = None
    overrides: list[str] = field(default_factory=list)
    search: dict[str, Any] = field(default_factory=dict)

    def run_config(self, run: RunSpec, seed: int) -> TrainConfig:
        """The fully resolved config of one run and seed."""
        base_path = run.config or self.config
        values = read_yaml(base_path) if base_path else {}
        values = apply_overrides(values, [*self.overrides, *run.overrides])
        values["model"] = run.model
        values["seed"] = seed
        data = run.data or self.data
        if data:
            values["data"] = data
        mods = run.modalities or self.modalities
        if mods:
            values["modalities"] = list(mods)
        values["progress"] = False
        return TrainConfig.from_dict(values, where=f"experiment {self.name!r}, run {run.name!r}")

    def jobs(self) -> list[tuple[RunSpec, int]]:
        return [(run, seed) for run in self.runs for seed in self.seeds]


def _as_list(value: Any, key: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{where}: {key} must be a list of key=value strings")


def load_experiment(
    path: str | Path,
    *,
    data: str | None = None,
    seeds: int | list[int] | None = None,
    epochs: int | None = None,
    overrides: list[str] | None = None,
) -> Experiment:
    """Read an experiment file; command-line values replace the file's.

    Args:
        path: the experiment YAML.
        data: replaces the experiment's (and every run's) data.
        seeds: N (seeds 0..N-1) or a list of seeds.
        epochs: maximum epochs of every run.
        overrides: ``key=value`` applied to every run, after the file's.
    """
    path = Path(path)
    raw = read_yaml(path)
    where = str(path)
    known = {"name", "config", "data", "modalities", "seeds", "set", "runs", "search"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    if not isinstance(raw.get("runs"), list) or not raw["runs"]:
        raise ConfigError(f"{where}: 'runs' must be a non-empty list of runs")

    def rel(p: str | None) -> str | None:
        if p is None:
            return None
        q = Path(p)
        return str(q if q.is_absolute() else (path.parent / q).resolve())

    runs = []
    names = set()
    for i, r in enumerate(raw["runs"]):
        rwhere = f"{where}, run {i}"
        if not isinstance(r, dict) or "model" not in r:
            raise ConfigError(f"{rwhere}: each run needs at least 'model'")
        extra = sorted(set(r) - {"name", "model", "config", "data", "modalities", "set"})
        if extra:
            raise ConfigError(f"{rwhere}: unknown key(s) {extra}")
        name = str(r.get("name", r["model"]))
        if name in names or "/" in name:
            raise ConfigError(f"{rwhere}: run name {name!r} is repeated or contains '/'")
        names.add(name)
        runs.append(
            RunSpec(
                name=name,
                model=str(r["model"]),
                config=rel(r.get("config")),
                data=data or r.get("data"),
                modalities=r.get("modalities"),
                overrides=_as_list(r.get("set"), "set", rwhere),
            )
        )
    seed_value = seeds if seeds is not None else raw.get("seeds", 5)
    if isinstance(seed_value, int) and not isinstance(seed_value, bool) and seed_value >= 1:
        seed_list = list(range(seed_value))
    elif isinstance(seed_value, list) and seed_value and all(isinstance(s, int) for s in seed_value):
        seed_list = list(seed_value)
    else:
        raise ConfigError(f"{where}: seeds must be a positive integer or a list of integers")
    extra_overrides = _as_list(raw.get("set"), "set", where) + list(overrides or [])
    if epochs is not None:
        extra_overrides.append(f"epochs={int(epochs)}")
    exp = Experiment(
        name=str(raw.get("name", path.stem)),
        runs=runs,
        seeds=seed_list,
        config=rel(raw.get("config")),
        data=data or raw.get("data"),
        modalities=raw.get("modalities"),
        overrides=extra_overrides,
        search=raw.get("search") or {},
    )
    for run, seed in exp.jobs():  # fail now, not after an hour of training
        exp.run_config(run, seed)
    return exp


def run_dir(out: Path, run: RunSpec, seed: int) -> Path:
    return out / "runs" / run.name / f"seed{seed}"


def is_finished(directory: Path, cfg: TrainConfig) -> bool:
    """A finished run with the same settings (metrics.json written last, atomically)."""
    if not (directory / "metrics.json").is_file() or not (directory / "config.yaml").is_file():
        return False
    saved = TrainConfig.from_dict(read_yaml(directory / "config.yaml"))
    if saved.identity() != cfg.identity():
        raise ConfigError(
            f"{directory} holds a finished run with other settings; use another --out"
        )
    return True


def run_lock(directory: Path) -> contextlib.AbstractContextManager[None]:
    """The writer lock of a run directory (:func:`mmlatch.rundir.writer_lock`), so two
    processes never train the same run."""
    from mmlatch.rundir import writer_lock

    return writer_lock(directory)


def execute_run(
    cfg_values: dict[str, Any], directory: str, threads: int | None, evaluate_test: bool = True
) -> dict[str, Any]:
    """Train one run (in this process); the unit of work of every backend.

    ``threads``: this worker's share of the free cores; a ``threads`` the run's config sets
    itself wins (and ``OMP_NUM_THREADS`` wins over both, see :mod:`mmlatch.training.threads`).
    """
    from mmlatch.training.run import train

    if threads and cfg_values.get("threads") is None:
        cfg_values = {**cfg_values, "threads": threads}
    cfg = TrainConfig.from_dict(cfg_values)
    with run_lock(Path(directory)):
        return train(cfg, directory, resume=True, evaluate_test=evaluate_test)


def _die_with_parent() -> None:
    """Worker initializer: on Linux, get SIGKILL when the experiment process dies, so no
    orphan keeps training a run that a re-run resumes."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def collect_results(exp: Experiment, out: Path) -> pd.DataFrame:
    """One row per finished run: name, model, data, seed, test_/valid_ metrics, params,
    best_epoch, epochs, seconds, precision and eval_precision (what the run trained and scored in)."""
    rows = []
    for run, seed in exp.jobs():
        d = run_dir(out, run, seed)
        if not (d / "metrics.json").is_file():
            continue
        m = json.loads((d / "metrics.json").read_text())
        timing = json.loads((d / "timing.json").read_text()) if (d / "timing.json").is_file() else {}
        row: dict[str, Any] = {"name": run.name, "model": m["model"], "data": m["data"], "seed": m["seed"]}
        row.update({f"test_{k}": v for k, v in m["test"].items()})
        row.update({f"valid_{k}": v for k, v in m["valid"].items()})
        row.update(
            params=m["params"], best_epoch=m["best_epoch"], epochs=m["epochs_run"],
            seconds=round(float(timing.get("seconds", float("nan"))), 3),
            precision=m.get("precision", {}).get("train"), eval_precision=m.get("precision", {}).get("inference"),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def summary_table(results: pd.DataFrame, fmt: str = "md") -> str:
    """The paper's table: per run mean +/- std over seeds and its best-of-N (lowest test MAE).

    Columns: those of :data:`TABLE_COLUMNS` present in ``results`` ("F1" is
    ``f1_published``, the convention of the published tables; "F1 (sklearn)" is ``f1``).
    Accuracies and F1 are in percent. Std is the sample standard deviation (ddof = 1). The
    md and latex formats end with :func:`table_note`; csv is the bare table.
    """
    if results.empty:
        return "(no finished runs)\n"
    cols = [c for c in TABLE_COLUMNS if f"test_{c[0]}" in results]
    if not cols:
        cols = [(k[5:], k[5:], 1.0, 3) for k in results if k.startswith("test_")]
    body: list[list[str]] = []
    spread = best_rows = False  # what the footnote must explain
    for name, group in results.groupby("name", sort=False):
        n = len(group)
        cells = []
        for metric, _, scale, dec in cols:
            v = group[f"test_{metric}"].astype(float) * scale
            # one seed: its value alone (no spread to show; "± 0.000" would claim one)
            cells.append(f"{v.mean():.{dec}f} ± {v.std(ddof=1):.{dec}f}" if n > 1 else f"{v.iloc[0]:.{dec}f}")
        spread |= n > 1
        body.append([f"{name} ({n} runs)" if n > 1 else f"{name} (seed {int(group['seed'].iloc[0])})", *cells])
        if "test_mae" in group and n > 1:
            best_rows = True
            best = group.loc[group["test_mae"].astype(float).idxmin()]
            body.append(
                [f"{name}, best of {n} (seed {int(best['seed'])})"]
                + [f"{float(best[f'test_{m}']) * s:.{d}f}" for m, _, s, d in cols]
            )
    header = ["Model", *(h for _, h, _, _ in cols)]
    note = table_note({h for _, h, _, _ in cols}, spread=spread, best_rows=bool(best_rows))
    if fmt == "csv":
        return pd.DataFrame(body, columns=header).to_csv(index=False)
    if fmt == "latex":
        lines = [
            "\\begin{tabular}{l" + "c" * len(cols) + "}",
            "\\hline",
            " & ".join(header) + " \\\\",
            "\\hline",
            *(" & ".join(c.replace("±", "$\\pm$") for c in row) + " \\\\" for row in body),
            "\\hline",
            "\\end{tabular}",
            f"% {note}",
        ]
        return "\n".join(lines) + "\n"
    if fmt != "md":
        raise ValueError(f"unknown table format {fmt!r}; use md, latex or csv")
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(cols)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + f"\n\n{note}\n"


def write_outputs(exp: Experiment, out: Path, fmt: str = "md") -> pd.DataFrame:
    """Rewrite results.csv and table.md (and table.tex/.csv when asked) atomically."""
    results = collect_results(exp, out)
    write_text(out / "results.csv", results.to_csv(index=False))
    write_text(out / "table.md", summary_table(results, "md"))
    if fmt != "md":
        write_text(out / f"table.{'tex' if fmt == 'latex' else 'csv'}", summary_table(results, fmt))
    return results


def run_experiment(
    exp: Experiment,
    out: str | Path,
    *,
    jobs: int = 1,
    backend: str = "local",
    fmt: str = "md",
    ray_address: str | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """:func:`run_experiment_unlocked` holding the writer lock of ``out`` (a second experiment
    on the same directory is refused; each run's directory has its own lock, taken by the
    process that trains it)."""
    from mmlatch.files import WriteError
    from mmlatch.rundir import writer_lock

    with writer_lock(Path(out)):
        try:
            return run_experiment_unlocked(exp, out, jobs=jobs, backend=backend, fmt=fmt, ray_address=ray_address, log=log)
        except WriteError as exc:
            raise RuntimeError(
                f"{exc}; files saved before are intact: free space and re-run the same command "
                f"(finished runs are skipped, interrupted ones resume)"
            ) from None


def run_experiment_unlocked(
    exp: Experiment,
    out: str | Path,
    *,
    jobs: int = 1,
    backend: str = "local",
    fmt: str = "md",
    ray_address: str | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Run every (run, seed) not finished yet; returns the results table.

    Args:
        exp: the experiment.
        out: its output directory.
        jobs: runs at once (local processes, or Ray tasks); each gets 1/jobs of the free
            cores as threads (:func:`mmlatch.training.threads.choose_threads`).
        backend: ``local`` or ``ray`` (each run a Ray task; ``ray_address`` or
            ``RAY_ADDRESS`` names a cluster, default a local instance).
        fmt: extra table format to write besides table.md (``latex`` or ``csv``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = []
    for run, seed in exp.jobs():
        d = run_dir(out, run, seed)
        cfg = exp.run_config(run, seed)
        if is_finished(d, cfg):
            log(f"skip   {run.name} seed {seed} (finished)")
        else:
            todo.append((run, seed, cfg, d))
    write_outputs(exp, out, fmt)
    threads = choose_threads(machine_cores(), machine_load(), None, os.environ, jobs).threads

    def done(run: RunSpec, seed: int, result: dict[str, Any], started: float) -> None:
        test = result.get("test", {})
        summary = f"test mae {test['mae']:.4f}" if test.get("mae") is not None else ""
        log(f"done   {run.name} seed {seed} {summary} ({time.perf_counter() - started:.0f} s)")
        write_outputs(exp, out, fmt)

    if backend == "ray":
        _run_ray(todo, jobs, threads, ray_address, done, log)
    elif backend != "local":
        raise ValueError(f"unknown backend {backend!r}; use local or ray")
    elif jobs <= 1:
        for run, seed, cfg, d in todo:
            log(f"train  {run.name} seed {seed} -> {d}")
            started = time.perf_counter()
            done(run, seed, execute_run(cfg.to_dict(), str(d), None), started)
    else:
        ctx = get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_die_with_parent) as pool:
            pending: dict[Future, tuple[RunSpec, int, float]] = {}
            for run, seed, cfg, d in todo:
                log(f"queue  {run.name} seed {seed} -> {d} ({threads} threads)")
                pending[pool.submit(execute_run, cfg.to_dict(), str(d), threads)] = (run, seed, time.perf_counter())
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    run, seed, started = pending.pop(fut)
                    done(run, seed, fut.result(), started)
    return write_outputs(exp, out, fmt)


def _run_ray(
    todo: list[tuple[RunSpec, int, TrainConfig, Path]],
    jobs: int,
    threads: int,
    address: str | None,
    done: Callable[[RunSpec, int, dict[str, Any], float], None],
    log: Callable[[str], None],
) -> None:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise RuntimeError("--backend ray needs Ray: pip install 'mmlatch[ray]'") from exc
    address = address or os.environ.get("RAY_ADDRESS")
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(jobs, 1) * threads, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=threads, max_retries=0)(execute_run)
        refs = {}
        for run, seed, cfg, d in todo:
            log(f"submit {run.name} seed {seed} -> {d} (ray, {threads} threads)")
            refs[remote.remote(cfg.to_dict(), str(d.resolve()), threads)] = (run, seed, time.perf_counter())
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                run, seed, started = refs.pop(ref)
                done(run, seed, ray.get(ref), started)
    finally:
        if started_here:
            ray.shutdown()
