"""``mmlatch verify``: check a whole run directory (or an extracted dataset) and say what is wrong.

A run directory is checked for: a writer holding it now; half-written temporary files left
by an interrupted write; the files a finished run has; ``config.yaml``, ``model.json`` and
``metrics.json`` readable; ``model.safetensors`` matching the SHA-256 in ``model.json`` and
fitting the model it describes; every checkpoint matching ``checkpoints/checksums.json``;
and config, model description, weights, metrics and epoch log coming from the same run
(model, data, seed, parameter count, epochs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmlatch.files import exception_line

OK, NOTE, PROBLEM = "ok", "note", "PROBLEM"


@dataclass
class Finding:
    """One line of the report: ``status`` is ok, note or PROBLEM."""

    status: str
    message: str

    def __str__(self) -> str:
        return f"{self.status:<8} {self.message}"




def _leftovers(root: Path) -> list[Finding]:
    found = []
    for tmp in sorted(root.rglob(".*.tmp")):
        found.append(Finding(NOTE, f"{tmp.relative_to(root)}: temporary file of a write that never finished "
                                   f"(the file it was to replace is intact; safe to delete)"))
    return found


def verify_run(run_dir: str | Path) -> list[Finding]:
    """Every check of a run directory, in order; see the module docstring."""
    from mmlatch.rundir import is_locked

    run = Path(run_dir)
    if not run.is_dir():
        return [Finding(PROBLEM, f"{run}: no such directory")]
    out: list[Finding] = []
    holder = is_locked(run)
    if holder:
        out.append(Finding(PROBLEM, f"{run} is being written now by {holder}: check it once that has finished"))
    out += _leftovers(run)
    imported = (run / "imported.json").is_file()
    needed = ["config.yaml", "model.json", "model.safetensors"]
    if not imported:
        needed += ["metrics.json", "environment.json", "timing.json", "log/metrics.csv", "checkpoints/best.ckpt"]
    missing = [n for n in needed if not (run / n).is_file()]
    if missing:
        last = run / "checkpoints" / "last.ckpt"
        hint = ": an unfinished run; re-running its training command resumes it" if "metrics.json" in missing and last.is_file() else ""
        out.append(Finding(PROBLEM, f"missing {', '.join(missing)}{hint}"))
    else:
        out.append(Finding(OK, f"files present ({'an imported run' if imported else 'a finished run'})"))

    cfg = _config(run, out)
    spec = _model_json(run, out)
    model = _weights(run, spec, out) if spec is not None else None
    _checkpoints(run, out)
    metrics = _metrics(run, out)
    if cfg is not None or spec is not None or metrics is not None:
        _same_run(run, cfg, spec, model, metrics, out)
    return out


def _config(run: Path, out: list[Finding]) -> Any:
    from mmlatch.training.config import TrainConfig, read_yaml

    path = run / "config.yaml"
    if not path.is_file():
        return None
    try:
        cfg = TrainConfig.from_dict(read_yaml(path), where=str(path))
    except Exception as exc:  # ConfigError, TypeError, yaml errors ...
        out.append(Finding(PROBLEM, f"config.yaml: not a readable run config ({exception_line(exc, with_type=False)})"))
        return None
    out.append(Finding(OK, "config.yaml: a readable run config"))
    return cfg


def _model_json(run: Path, out: list[Finding]) -> dict[str, Any] | None:
    from mmlatch.training.run import RunError, read_model_json

    if not (run / "model.json").is_file():
        return None
    try:
        spec = read_model_json(run)
    except RunError as exc:
        out.append(Finding(PROBLEM, exception_line(exc, with_type=False)))
        return None
    out.append(Finding(OK, "model.json: a readable model description"))
    return spec


def _weights(run: Path, spec: dict[str, Any], out: list[Finding]) -> Any:
    from mmlatch.training.run import RunError, load_run_model

    if not (run / "model.safetensors").is_file() or not (run / "config.yaml").is_file():
        return None
    try:
        model, _, _ = load_run_model(run)
    except RunError as exc:
        out.append(Finding(PROBLEM, exception_line(exc, with_type=False)))
        return None
    if spec.get("weights_sha256"):
        out.append(Finding(OK, "model.safetensors: SHA-256 matches model.json; the weights fit its model"))
    else:
        out.append(Finding(NOTE, "model.safetensors: no stored hash (model.json written before hashes were "
                                 "stored); the weights load and fit its model"))
    return model


def _checkpoints(run: Path, out: list[Finding]) -> None:
    from mmlatch.training.checkpoint_io import ChecksumError, read_checksums
    from mmlatch.training.run import RunError, read_checkpoint

    folder = run / "checkpoints"
    if not folder.is_dir():
        return
    try:
        known = read_checksums(folder)
    except ChecksumError as exc:
        out.append(Finding(PROBLEM, exception_line(exc, with_type=False)))
        known = {}
    for ckpt in sorted(folder.glob("*.ckpt")):
        try:
            state = read_checkpoint(ckpt)
        except RunError as exc:
            out.append(Finding(PROBLEM, exception_line(exc, with_type=False)))
            continue
        epoch = int(state.get("epoch", -1)) + 1
        if known.get(ckpt.name):
            out.append(Finding(OK, f"checkpoints/{ckpt.name}: SHA-256 matches checksums.json (epoch {epoch})"))
        else:
            out.append(Finding(NOTE, f"checkpoints/{ckpt.name}: no stored hash (epoch {epoch}); it loads"))


def _metrics(run: Path, out: list[Finding]) -> dict[str, Any] | None:
    path = run / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError(f"a JSON {type(metrics).__name__}, not an object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        out.append(Finding(PROBLEM, f"metrics.json: not valid JSON ({exception_line(exc, with_type=False)})"))
        return None
    return metrics


def _same_run(
    run: Path, cfg: Any, spec: dict[str, Any] | None, model: Any, metrics: dict[str, Any] | None, out: list[Finding]
) -> None:
    """config.yaml, model.json, the weights, metrics.json and the epoch log describe one run."""
    from mmlatch.models import count_parameters

    before = len([f for f in out if f.status == PROBLEM])
    pairs: list[tuple[str, Any, str, Any]] = []
    if cfg is not None and spec is not None:
        pairs.append(("model.json: model", spec.get("model"), "config.yaml: model", cfg.model))
    if metrics is not None and cfg is not None:
        for key in ("model", "data", "seed"):
            if key in metrics:
                pairs.append((f"metrics.json: {key}", metrics[key], f"config.yaml: {key}", getattr(cfg, key)))
    if metrics is not None and model is not None and "params" in metrics:
        pairs.append(("metrics.json: params", metrics["params"], "the weights", count_parameters(model)))
    log = run / "log" / "metrics.csv"
    if metrics is not None and "epochs_run" in metrics and log.is_file():
        try:
            import pandas as pd

            rows = len(pd.read_csv(log))
            pairs.append(("metrics.json: epochs_run", metrics["epochs_run"], "log/metrics.csv: rows", rows))
        except Exception as exc:  # pandas parser errors
            out.append(Finding(PROBLEM, f"log/metrics.csv: not a readable CSV ({exception_line(exc, with_type=False)})"))
    if metrics is not None and cfg is not None and isinstance(metrics.get("epochs_run"), int) and metrics["epochs_run"] > cfg.epochs:
        out.append(Finding(PROBLEM, f"metrics.json: {metrics['epochs_run']} epochs run, but config.yaml allows {cfg.epochs}"))
    for left, a, right, b in pairs:
        if a != b:
            out.append(Finding(PROBLEM, f"{left} is {a!r} but {right} is {b!r}: the files come from different runs"))
    if len([f for f in out if f.status == PROBLEM]) == before and pairs:
        out.append(Finding(OK, "config.yaml, model.json, weights, metrics.json and the epoch log are from one run"))


def verify_extraction(path: str | Path) -> list[Finding]:
    """An extracted dataset (``.npz``) against its manifest JSON: present, hash, readable."""
    from mmlatch.data import load_dataset

    npz = Path(path)
    manifest = npz.with_name(npz.stem + ".manifest.json")
    out: list[Finding] = _leftovers(npz.parent) if npz.parent.is_dir() else []
    if not npz.is_file():
        return out + [Finding(PROBLEM, f"{npz}: no such file")]
    if not manifest.is_file():
        out.append(Finding(NOTE, f"{manifest.name}: absent (not written by mmlatch extract): no stored hash"))
    else:
        try:
            doc = json.loads(manifest.read_text())
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return out + [Finding(PROBLEM, f"{manifest}: not valid JSON ({exception_line(exc, with_type=False)})")]
        if not doc.get("dataset_sha256"):
            out.append(Finding(NOTE, f"{npz.name}: no stored hash ({manifest.name} written before hashes were stored)"))
    try:
        load_dataset(str(npz))
    except Exception as exc:  # DataError names the file
        return out + [Finding(PROBLEM, exception_line(exc, with_type=False))]
    out.append(Finding(OK, f"{npz.name}: readable" + (", SHA-256 matches its manifest" if manifest.is_file() and doc.get("dataset_sha256") else "")))
    return out


__all__ = ["Finding", "verify_extraction", "verify_run"]
