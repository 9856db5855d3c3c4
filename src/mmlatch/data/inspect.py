"""What is in a dataset: a JSON-ready summary and its text rendering (``mmlatch data inspect``).

:func:`describe_dataset` returns plain Python types only (str, int, float, list, dict), so
the CLI can print it as JSON; :func:`format_description` renders it for people.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mmlatch.data.dataset import MultimodalDataset


def _stats(x: np.ndarray) -> dict[str, float]:
    """mean/std/min/max of a 1-d array (zeros when empty)."""
    if x.size == 0:
        return {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0}
    return {
        "mean": float(np.mean(x)),
        "std": float(np.std(x)),
        "min": float(np.min(x)),
        "max": float(np.max(x)),
    }


def describe_dataset(ds: MultimodalDataset) -> dict[str, Any]:
    """Summarise ``ds``.

    Returns:
        ``{"name", "format", "source", "task": {...}, "modalities": [...],
        "feature_dims": {modality: F}, "splits": {split: {"size": N,
        "lengths": {modality: {"max_len": L, "min", "mean", "max"}},
        "labels": {label name: {"mean", "std", "min", "max"}} (regression/multilabel) or
        {class name: count} (classification), "nonfinite": {modality: count}}},
        "nonfinite_total": int}``. ``format`` is the prefix of ``source`` before ``:``
        (readers write ``"<format>:<path>"``), or its leading word.
    """
    fmt, sep, where = ds.source.partition(":")
    if not sep:  # e.g. "synthetic(seed=0)"
        fmt, where = (re.match(r"\w*", ds.source).group() or "unknown"), ds.source  # type: ignore[union-attr]
    task = ds.task
    splits: dict[str, Any] = {}
    for sname, s in ds.splits.items():
        lengths = {
            m: {
                "max_len": int(s.features[m].shape[1]),
                **{k: v for k, v in _stats(s.lengths[m]).items() if k != "std"},
            }
            for m in ds.modalities
        }
        if task.kind == "classification":
            idx = s.labels[:, 0].astype(np.int64) if len(s) else np.zeros(0, dtype=np.int64)
            counts = (
                np.bincount(idx, minlength=task.num_outputs)
                if idx.size
                else np.zeros(task.num_outputs, int)
            )
            labels: dict[str, Any] = {
                (task.label_names[i] if i < len(task.label_names) else f"class_{i}"): int(c)
                for i, c in enumerate(counts)
            }
        else:
            labels = {
                (task.label_names[j] if j < len(task.label_names) else f"output_{j}"): _stats(
                    s.labels[:, j]
                )
                for j in range(task.num_outputs)
            }
        splits[sname] = {
            "size": len(s),
            "lengths": lengths,
            "labels": labels,
            "nonfinite": {m: int(ds.nonfinite.get(sname, {}).get(m, 0)) for m in ds.modalities},
        }
    return {
        "name": ds.name,
        "format": fmt,
        "source": where,
        "task": {
            "kind": task.kind,
            "num_outputs": task.num_outputs,
            "label_names": list(task.label_names),
            "label_range": list(task.label_range) if task.label_range is not None else None,
        },
        "modalities": list(ds.modalities),
        "feature_dims": dict(ds.modality_dims),
        "splits": splits,
        "nonfinite_total": int(sum(n for per in ds.nonfinite.values() for n in per.values())),
    }


def format_description(d: dict[str, Any]) -> str:
    """Render :func:`describe_dataset`'s output as readable text."""
    t = d["task"]
    rng = f" in [{t['label_range'][0]:g}, {t['label_range'][1]:g}]" if t["label_range"] else ""
    lines = [
        f"dataset   {d['name']}",
        f"format    {d['format']}",
        f"source    {d['source']}",
        f"task      {t['kind']}, {t['num_outputs']} output(s){rng}: {', '.join(t['label_names'])}",
        "features  " + ", ".join(f"{m} {f}" for m, f in d["feature_dims"].items()),
        f"non-finite values replaced: {d['nonfinite_total']}",
    ]
    for sname, s in d["splits"].items():
        lines.append(f"\n[{sname}] {s['size']} samples")
        for m, ln in s["lengths"].items():
            nf = s["nonfinite"].get(m, 0)
            lines.append(
                f"  {m:<7} L={ln['max_len']:<4} length min {ln['min']:.0f} / mean {ln['mean']:.1f} "
                f"/ max {ln['max']:.0f}" + (f"   non-finite {nf}" if nf else "")
            )
        if t["kind"] == "classification":
            lines.append("  classes " + ", ".join(f"{k} {v}" for k, v in s["labels"].items()))
        else:
            for name, st in s["labels"].items():
                lines.append(
                    f"  label {name:<10} mean {st['mean']:+.3f} std {st['std']:.3f} "
                    f"min {st['min']:+.3f} max {st['max']:+.3f}"
                )
    return "\n".join(lines)


__all__ = ["describe_dataset", "format_description"]
