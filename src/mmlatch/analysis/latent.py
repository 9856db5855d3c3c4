"""Latent incongruity: how crossmodal attention changes the affective reading of the query
(primary) modality, HCT-MG vs MulT (after the analysis of Wang et al., arXiv 2305.13583).

The paper's question is whether the salient affective information of one modality survives
crossmodal attention to another, or is pulled towards the other modality's (possibly opposite)
tendency. Its exact procedure is not reproduced here (the method text was not available to
us); this is our operationalisation, measured on the model's own representations:

* For each crossmodal path ``target <- sources`` the target sequence is recorded BEFORE
  crossmodal attention and AFTER it (forward hooks; the model is not edited):

  - HCT-MG: before = the primary modality's unimodal encoder output, after = the last fusion
    stage's output (the primary as query over every auxiliary); the primary is the one the
    model uses at evaluation (``primary`` if fixed, else from ``gate_ema``).
  - MulT: before = the target's temporal projection (what its crossmodal transformers take
    as query), after = the output of the ``target <- source`` crossmodal transformer; every
    pair is reported.

* Each record is pooled (mean over the target's real steps) and read by a linear probe
  (ridge regression, sklearn) fitted on the TRAIN split to the label: the probe's output is
  the affective reading of that representation. Before and after get their own probes.

* On the analysed split, per group (``congruent``/``incongruent``, by the sign agreement of
  the unimodal predictions of a reference HCT-MG run, as in :mod:`.incongruity`; ``all``):
  ``mae_before``/``mae_after`` of the probes, ``flip`` (share of samples whose reading changes
  side of the centre), ``harmful`` (share whose reading was on the label's side before and is
  not after) and ``helpful`` (the reverse). Crossmodal attention that "mitigates incongruity"
  lowers the error and flips helpfully on incongruent samples; one that imports the other
  modality's opposite tendency flips harmfully.

Single-output regression only (the centre is 0 for sentiment, else the train-label mean).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from mmlatch.analysis.collect import (
    BATCH_SIZE,
    AnalysisError,
    RunData,
    collect_outputs,
    companion_csv,
    load_run_data,
    new_figure,
    run_labels,
    save_figure,
)
from mmlatch.analysis.incongruity import GROUPS, grouping, sign_centre
from mmlatch.data.batching import Batch
from mmlatch.models.hctmg import HCTMG
from mmlatch.models.mult import MulT
from mmlatch.modules.transformer import masked_mean
from mmlatch.training.inference import infer

COLUMNS = ["run", "model", "target", "sources", "group", "n", "mae_before", "mae_after", "flip", "harmful", "helpful"]


def crossmodal_paths(model: nn.Module) -> list[tuple[str, str, nn.Module, nn.Module]]:
    """``(target, sources, before_module, after_module)`` for every crossmodal path of an
    HCT-MG or MulT model (possibly wrapped, e.g. by TopDown or standardisation); both modules
    output (B, L_target, d)."""
    for m in model.modules():
        if isinstance(m, HCTMG):
            was = m.training  # the evaluation order: fixed primary, else ranked by gate_ema
            m.eval()
            order = m.fusion_order(torch.zeros(1, len(m.modality_dims)))
            m.train(was)
            return [(order[0], "+".join(order[1:]), m.encoders[order[0]], m.stages[-1])]
        if isinstance(m, MulT):
            return [(t, s, m.projections[t], enc) for t, stacks in m.encoders.items() for s, enc in stacks.items()]
    inner = getattr(model, "inner", model)  # behind a standardisation wrapper
    raise AnalysisError(
        f"model {type(inner).__name__} has no crossmodal attention paths this analysis reads "
        "(HCT-MG or MulT models: hctmg, hctmg-mmlatch, mult, mult-mmlatch)"
    )


def pooled_paths(run: RunData, split: str, batch_size: int = BATCH_SIZE, device: str = "cpu") -> dict[str, Any]:
    """Pooled before/after representations of every crossmodal path on one split (recorded
    by :func:`mmlatch.training.inference.infer`'s latent probes).

    Returns:
        ``{"ids": [...], "labels": (N,), "paths": [(target, sources, before (N, d), after (N, d))]}``.
    """
    model = run.model.eval().to(device)
    paths = crossmodal_paths(model)

    def pooled(target: str) -> Callable[[Tensor, Batch], Tensor]:
        # (B, L_target, d), the last call of the batch's forward -> (B, d) over real steps
        return lambda x, batch: masked_mean(x, batch.lengths[target])

    probes = {}
    for i, (target, _, before, after) in enumerate(paths):
        probes[f"{i}/before"] = (before, pooled(target))
        probes[f"{i}/after"] = (after, pooled(target))
    out = infer(model, run.dataset.split(split), batch_size=batch_size, device=device, labels=True, latents=probes)
    assert out.labels is not None
    return {
        "ids": out.ids,
        "labels": out.labels[:, 0].astype(np.float32),
        "paths": [(t, s, out.latents[f"{i}/before"], out.latents[f"{i}/after"]) for i, (t, s, _, _) in enumerate(paths)],
    }


def _probe(train_x: np.ndarray, train_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Ridge probe fitted on standardised train representations -> readings of ``x``."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(train_x, train_y)
    return probe.predict(x)


def latent_table(
    runs: Sequence[str | Path],
    reference: str | Path | None = None,
    data: str | None = None,
    split: str = "test",
    reader_options: dict[str, Any] | None = None,
    batch_size: int = BATCH_SIZE,
    device: str = "cpu",
) -> pd.DataFrame:
    """Per run, crossmodal path and group: probe errors before/after and flip shares
    (module docstring). ``reference`` (default: the first run with unimodal predictions)
    groups the samples. Runs without crossmodal attention (e.g. the baseline) are left out;
    if no run has any, AnalysisError.

    Returns:
        Columns :data:`COLUMNS`.
    """
    if not runs:
        raise AnalysisError("no run given")
    cache: dict[str, Any] = {}
    loaded = [load_run_data(path, data, reader_options, cache) for path in runs]
    if reference is not None:
        ref = load_run_data(reference, data, reader_options, cache)
        ref_out = collect_outputs(ref.model, ref.dataset.split(split), batch_size, device)
    else:  # the first run with unimodal predictions; its outputs are kept, not collected again
        for ref in loaded:
            ref_out = collect_outputs(ref.model, ref.dataset.split(split), batch_size, device)
            if ref_out.unimodal is not None:
                break
        else:
            raise AnalysisError("no run gives unimodal predictions to group the samples; pass --reference HCTMG_RUN")
    ids, incongruent = grouping(ref, ref_out)
    groups = dict(zip(ids, incongruent.tolist()))
    readable = []
    for run, label in zip(loaded, run_labels(runs)):
        try:
            crossmodal_paths(run.model)
            readable.append((run, label))
        except AnalysisError:
            if len(loaded) == 1:
                raise
    if not readable:  # runs without crossmodal attention (e.g. the baseline) are left out
        crossmodal_paths(loaded[0].model)
    rows = []
    for run, label in readable:
        centre = sign_centre(run.dataset)
        fit = pooled_paths(run, "train", batch_size, device)
        ev = pooled_paths(run, split, batch_size, device)
        missing = [i for i in ev["ids"] if i not in groups]
        if missing:
            raise AnalysisError(f"run {label!r}'s {split} samples are not all in the reference run's (e.g. {missing[:3]})")
        incongruent = np.array([groups[i] for i in ev["ids"]], dtype=bool)
        y = ev["labels"].astype(np.float64)
        for (target, sources, train_b, train_a), (_, _, b, a) in zip(fit["paths"], ev["paths"]):
            before = _probe(train_b, fit["labels"], b)
            after = _probe(train_a, fit["labels"], a)
            right_before = (before >= centre) == (y >= centre)
            right_after = (after >= centre) == (y >= centre)
            flip = (before >= centre) != (after >= centre)
            for group, select in zip(GROUPS, (~incongruent, incongruent, np.ones_like(incongruent))):
                n = int(select.sum())

                def share(v: np.ndarray) -> float:
                    return float(v[select].mean()) if n else float("nan")

                rows.append({
                    "run": label, "model": run.spec["model"], "target": target, "sources": sources,
                    "group": group, "n": n,
                    "mae_before": share(np.abs(before - y)), "mae_after": share(np.abs(after - y)),
                    "flip": share(flip), "harmful": share(flip & right_before), "helpful": share(flip & right_after),
                })
    return pd.DataFrame(rows, columns=COLUMNS)


def plot_latent(table: pd.DataFrame, png: str | Path) -> tuple[Path, Path]:
    """Probe MAE before -> after crossmodal attention (left) and harmful/helpful flip shares
    (right) per path, on incongruent and congruent samples; writes ``png`` and the CSV beside it.

    Returns:
        (png path, csv path).
    """
    paths = list(dict.fromkeys(zip(table["run"], table["target"], table["sources"])))
    names = [f"{r}\n{t}<-{s}" for r, t, s in paths]
    fig = new_figure(3.0 + 1.4 * len(paths), 4.4)
    axes = fig.subplots(1, 2)
    width = 0.2
    xs = np.arange(len(paths))
    for j, group in enumerate(("congruent", "incongruent")):
        part = table[table["group"] == group].set_index(["run", "target", "sources"]).reindex(paths)
        off = (j - 0.5) * 2 * width
        axes[0].bar(xs + off - width / 2, part["mae_before"].fillna(0), width, color=f"C{j}", alpha=0.45,
                    label=f"{group}: before")
        axes[0].bar(xs + off + width / 2, part["mae_after"].fillna(0), width, color=f"C{j}", label=f"{group}: after")
        axes[1].bar(xs + off - width / 2, part["harmful"].fillna(0), width, color=f"C{j}", hatch="//", alpha=0.6,
                    label=f"{group}: harmful flips")
        axes[1].bar(xs + off + width / 2, part["helpful"].fillna(0), width, color=f"C{j}", label=f"{group}: helpful flips")
    for ax, title, ylabel in ((axes[0], "probe error of the target stream", "MAE of a linear probe"),
                              (axes[1], "sign changes by crossmodal attention", "share of samples")):
        ax.set_xticks(xs, names, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=6)
    png = save_figure(fig, png)
    csv = companion_csv(png)
    table.to_csv(csv, index=False)
    return png, csv


__all__ = ["COLUMNS", "crossmodal_paths", "latent_table", "plot_latent", "pooled_paths"]
