"""Evaluation metrics, following the conventions of the multimodal sentiment literature.

Sentiment (CMU-MOSI/MOSEI, labels ``y`` in [-3, 3], predictions ``p``):

* ``mae``: mean absolute error, on unclipped predictions.
* ``corr``: Pearson correlation; NaN when predictions or labels are constant.
* ``acc7`` / ``acc5``: clip predictions and labels to [-3, 3] / [-2, 2], round to the
  nearest integer and compare. Rounding is :func:`numpy.round`, i.e. round-half-to-even
  (2.5 -> 2, 1.5 -> 2, 0.5 -> 0, -0.5 -> -0), as in the reference implementations.

Binary accuracy and F1 come in three conventions for label 0 ("neutral") and, for F1, in
two definitions. With ``f1_score`` = :func:`sklearn.metrics.f1_score` and
``nz = y != 0``:

* **non0**: samples with label 0 are dropped; positive means ``> 0`` (a prediction of
  exactly 0 is negative).

  - ``acc2`` = ``mean((y[nz] > 0) == (p[nz] > 0))``
  - ``f1`` = ``f1_score(y[nz] > 0, p[nz] > 0, average="weighted")``
  - ``f1_published`` = ``f1_score(p[nz] > 0, y[nz] > 0, average="weighted")``

* **has0**: all samples, zeros counted positive; positive means ``>= 0`` for both.

  - ``acc2_has0`` = ``mean((y >= 0) == (p >= 0))``
  - ``f1_has0`` = ``f1_score(y >= 0, p >= 0, average="weighted")``
  - ``f1_has0_published`` = ``f1_score(p >= 0, y >= 0, average="weighted")``

* **has0_neg**: all samples, zeros counted negative; positive means ``> 0`` for both.

  - ``acc2_has0_neg`` = ``mean((y > 0) == (p > 0))``
  - ``f1_has0_neg`` = ``f1_score(y > 0, p > 0, average="weighted")``
  - ``f1_has0_neg_published`` = ``f1_score(p > 0, y > 0, average="weighted")``

The two F1 definitions. Weighted F1 is ``sum_c w_c * F1_c / sum_c w_c`` over the classes
``c`` (negative, positive). The per-class ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)`` is the
same whichever array is passed first (swapping them swaps FP and FN); the weights are not:
scikit-learn weights by the support of its first argument.

* ``f1*`` (no suffix): scikit-learn's documented order ``f1_score(y_true, y_pred)``, so
  ``w_c`` = number of samples whose **label** is ``c``. The MMSA-style evaluation
  (``MetricsTop``: ``Has0_F1_score`` / ``Non0_F1_score``, copied by many later
  repositories) computes F1 this way.
* ``f1*_published``: the **predictions** are passed in the place of the labels, so ``w_c`` =
  number of samples **predicted** ``c``. This is what the public code of MulT
  (``src/eval_metrics.py``, ``eval_mosei_senti``) and of MMLatch (``mmlatch/mosei_metrics.py``)
  computes, hence the F1 columns of their papers' tables and of the work that reused their
  evaluation. The two differ whenever the label and prediction class counts differ
  (FP != FN); for example labels ``[+, +, -, -]`` and predictions ``[-, -, -, -]`` give
  ``f1 = 1/3`` but ``f1_published = 2/3``.

Who reports which (checked side by side against both codes on random cases with zeros and
.5 ties; the differences are 0):

* MulT's ``eval_mosei_senti`` (called with ``exclude_zero=True`` at test time): "F1 score" =
  ``f1_published``, "Accuracy" = ``acc2``; with ``exclude_zero=False`` its numbers are
  ``f1_has0_neg_published`` and ``acc2_has0_neg``.
* MMLatch's ``eval_mosei_senti``: ``f1`` = ``f1_published``, ``bin_acc`` = ``acc2``;
  ``f1_pos`` = ``f1_has0_published``, ``bin_acc_pos`` = ``acc2_has0``; ``f1_neg`` =
  ``f1_has0_neg_published``, ``bin_acc_neg`` = ``acc2_has0_neg``.
* Both: ``mae``, ``corr`` (``np.corrcoef``), ``acc_7`` = ``acc7``, ``acc_5`` = ``acc5``.
* MMSA-style code: ``Non0_acc_2`` = ``acc2``, ``Non0_F1_score`` = ``f1``, ``Has0_acc_2`` =
  ``acc2_has0``, ``Has0_F1_score`` = ``f1_has0``.

Paper tables (``mmlatch experiment``) print ``f1_published`` as "F1" so they compare with the
published numbers, next to ``f1``.

Classification and multi-label tasks (e.g. IEMOCAP) report ``f1`` as scikit-learn's weighted
F1 with the labels first, as MulT's and MMLatch's ``eval_iemocap`` compute it. Every metric
is returned as a Python ``float``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import f1_score

from mmlatch.data.dataset import TaskSpec

#: Metric used for model selection per task kind.
PRIMARY_METRIC: dict[str, str] = {
    "regression": "mae",
    "classification": "acc",
    "multilabel": "f1",
}

SENTIMENT_METRICS: tuple[str, ...] = (
    "mae",
    "corr",
    "acc7",
    "acc5",
    "acc2",
    "f1",
    "f1_published",
    "acc2_has0",
    "f1_has0",
    "f1_has0_published",
    "acc2_has0_neg",
    "f1_has0_neg",
    "f1_has0_neg_published",
)


def lower_is_better(name: str) -> bool:
    """True for error-like metrics (``mae``, ``mae_<name>``, and any ``loss``); else False."""
    return name.startswith("mae") or name.startswith("loss") or name.endswith("loss")


# ----------------------------------------------------------------------------- helpers


def _as_float_array(x: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{what} are empty: cannot compute metrics on no samples")
    return arr


def _check_finite(pred: np.ndarray, labels: np.ndarray) -> None:
    if not np.isfinite(pred).all():
        raise ValueError(
            f"predictions contain NaN/inf ({int((~np.isfinite(pred)).sum())} of {pred.size} values)"
        )
    if not np.isfinite(labels).all():
        raise ValueError(
            f"labels contain NaN/inf ({int((~np.isfinite(labels)).sum())} of {labels.size} values)"
        )


def _pair_1d(pred: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return two equally long 1-D float64 arrays ``(N,)``."""
    p = _as_float_array(pred, "predictions")
    t = _as_float_array(y, "labels")
    if p.ndim != 1 or t.ndim != 1 or p.shape != t.shape:
        raise ValueError(
            f"predictions and labels must be 1-D arrays of the same length, got shapes "
            f"{p.shape} and {t.shape}"
        )
    _check_finite(p, t)
    return p, t


def _pair_2d(
    pred: ArrayLike, y: ArrayLike, names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return two ``(N, K)`` float64 arrays with ``K == len(names)``."""
    p = _as_float_array(pred, "predictions")
    t = _as_float_array(y, "labels")
    if p.ndim != 2 or p.shape != t.shape:
        raise ValueError(
            f"predictions and labels must be 2-D arrays of the same shape (N, K), got "
            f"{p.shape} and {t.shape}"
        )
    if p.shape[1] != len(names):
        raise ValueError(f"{p.shape[1]} columns but {len(names)} names {list(names)}")
    _check_finite(p, t)
    return p, t


def pearson(pred: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two ``(N,)`` arrays; NaN if ``N < 2`` or either is constant."""
    if pred.shape[0] < 2:
        return float("nan")
    # Constant input has no defined correlation; checked exactly to avoid 0/0 warnings.
    if np.ptp(pred) == 0 or np.ptp(y) == 0:
        return float("nan")
    dp = pred - pred.mean()
    dy = y - y.mean()
    sp = float(np.sqrt(np.dot(dp, dp)))
    sy = float(np.sqrt(np.dot(dy, dy)))
    return float(np.clip(np.dot(dp, dy) / (sp * sy), -1.0, 1.0))


def _weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """scikit-learn weighted F1 (weights = class supports in ``y_true``), no warnings."""
    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def _binary_metrics(bt: np.ndarray, bp: np.ndarray, suffix: str) -> dict[str, float]:
    """``acc2``, ``f1`` and ``f1_published`` (names + ``suffix``) of binarised ``(M,)``
    labels ``bt`` and predictions ``bp``; NaN for ``M == 0``."""
    if bt.size == 0:
        nan = float("nan")
        return {f"acc2{suffix}": nan, f"f1{suffix}": nan, f"f1{suffix}_published": nan}
    return {
        f"acc2{suffix}": float(np.mean(bt == bp)),
        f"f1{suffix}": _weighted_f1(bt, bp),  # weights: label class counts
        f"f1{suffix}_published": _weighted_f1(bp, bt),  # weights: predicted class counts
    }


# ----------------------------------------------------------------------------- metrics


def sentiment_metrics(pred: ArrayLike, y: ArrayLike) -> dict[str, float]:
    """The paper's sentiment metrics.

    Args:
        pred: ``(N,)`` predicted sentiment (any real values; clipped where the metric says).
        y: ``(N,)`` labels in [-3, 3].
    Returns:
        The keys of :data:`SENTIMENT_METRICS` in that order (formulas in the module
        docstring). The non0 ``acc2``/``f1``/``f1_published`` are NaN when every label is 0;
        ``corr`` is NaN for constant predictions or labels.
    """
    p, t = _pair_1d(pred, y)
    out: dict[str, float] = {}
    out["mae"] = float(np.mean(np.abs(p - t)))
    out["corr"] = pearson(p, t)
    # np.round rounds half to even: 2.5 -> 2, -2.5 -> -2, 1.5 -> 2.
    out["acc7"] = float(np.mean(np.round(np.clip(p, -3, 3)) == np.round(np.clip(t, -3, 3))))
    out["acc5"] = float(np.mean(np.round(np.clip(p, -2, 2)) == np.round(np.clip(t, -2, 2))))

    nz = t != 0
    out.update(_binary_metrics(t[nz] > 0, p[nz] > 0, ""))
    out.update(_binary_metrics(t >= 0, p >= 0, "_has0"))
    out.update(_binary_metrics(t > 0, p > 0, "_has0_neg"))
    return out


def regression_metrics(
    pred: ArrayLike, y: ArrayLike, names: Sequence[str]
) -> dict[str, float]:
    """MAE and Pearson correlation per output column and averaged over columns.

    Args:
        pred: ``(N, K)`` predictions.
        y: ``(N, K)`` labels.
        names: ``K`` column names.
    Returns:
        ``mae``, ``corr`` (means over the K columns; ``corr`` is NaN if any column's is),
        then ``mae_<name>``, ``corr_<name>`` for each column in order.
    """
    p, t = _pair_2d(pred, y, names)
    per: dict[str, float] = {}
    maes: list[float] = []
    corrs: list[float] = []
    for k, name in enumerate(names):
        mae = float(np.mean(np.abs(p[:, k] - t[:, k])))
        corr = pearson(p[:, k], t[:, k])
        per[f"mae_{name}"] = mae
        per[f"corr_{name}"] = corr
        maes.append(mae)
        corrs.append(corr)
    out = {"mae": float(np.mean(maes)), "corr": float(np.mean(corrs))}
    out.update(per)
    return out


def classification_metrics(
    logits: ArrayLike, y: ArrayLike, names: Sequence[str]
) -> dict[str, float]:
    """Accuracy and weighted F1 of single-label classification.

    Args:
        logits: ``(N, C)`` class scores; the prediction is the argmax.
        y: ``(N,)`` or ``(N, 1)`` class indices in ``[0, C)`` (integers, possibly stored as
            floats).
        names: ``C`` class names.
    Returns:
        ``acc``, ``f1``.
    """
    z = _as_float_array(logits, "predictions")
    t = _as_float_array(y, "labels")
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if z.ndim != 2 or t.ndim != 1 or z.shape[0] != t.shape[0]:
        raise ValueError(
            f"classification expects logits (N, C) and labels (N,) or (N, 1), got "
            f"{z.shape} and {np.shape(y)}"
        )
    if z.shape[1] != len(names):
        raise ValueError(f"{z.shape[1]} logit columns but {len(names)} class names {list(names)}")
    _check_finite(z, t)
    if not np.all(t == np.round(t)) or t.min() < 0 or t.max() >= z.shape[1]:
        raise ValueError(
            f"classification labels must be integer class indices in [0, {z.shape[1]}), "
            f"found values in [{t.min()}, {t.max()}]"
        )
    ti = t.astype(np.int64)
    pi = np.argmax(z, axis=1)
    return {"acc": float(np.mean(pi == ti)), "f1": _weighted_f1(ti, pi)}


def multilabel_metrics(
    logits: ArrayLike, y: ArrayLike, names: Sequence[str]
) -> dict[str, float]:
    """Accuracy and weighted F1 per binary task (e.g. IEMOCAP emotions) and their means.

    Args:
        logits: ``(N, K)`` one binary logit per task; positive when ``logit > 0``.
        y: ``(N, K)`` labels in {0, 1}.
        names: ``K`` task names.
    Returns:
        ``acc``, ``f1`` (means over tasks), then ``acc_<name>``, ``f1_<name>`` per task.
    """
    z, t = _pair_2d(logits, y, names)
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("multilabel labels must be 0 or 1")
    per: dict[str, float] = {}
    accs: list[float] = []
    f1s: list[float] = []
    for k, name in enumerate(names):
        bt = t[:, k] > 0.5
        bp = z[:, k] > 0
        acc = float(np.mean(bt == bp))
        f1 = _weighted_f1(bt, bp)
        per[f"acc_{name}"] = acc
        per[f"f1_{name}"] = f1
        accs.append(acc)
        f1s.append(f1)
    out = {"acc": float(np.mean(accs)), "f1": float(np.mean(f1s))}
    out.update(per)
    return out


# ----------------------------------------------------------------------------- dispatch


def metric_names(task: TaskSpec) -> list[str]:
    """The keys :func:`compute_metrics` returns for ``task``, in the same order."""
    if task.kind == "regression":
        if task.is_sentiment:
            return list(SENTIMENT_METRICS)
        if task.num_outputs == 1:
            return ["mae", "corr"]
        names = ["mae", "corr"]
        for n in task.label_names:
            names += [f"mae_{n}", f"corr_{n}"]
        return names
    if task.kind == "classification":
        return ["acc", "f1"]
    if task.kind == "multilabel":
        names = ["acc", "f1"]
        for n in task.label_names:
            names += [f"acc_{n}", f"f1_{n}"]
        return names
    raise ValueError(f"unknown task kind {task.kind!r}")


def compute_metrics(task: TaskSpec, pred: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """All metrics for ``task``.

    Args:
        task: what the outputs mean.
        pred: ``(N, num_outputs)`` model outputs (regression values, class logits, or binary
            logits). A 1-D ``(N,)`` array is accepted when ``num_outputs == 1``.
        labels: ``(N, num_outputs)`` labels; ``(N, 1)`` (or ``(N,)``) class indices for
            classification.
    Returns:
        Metric name -> float, keys as :func:`metric_names` (same order).
    Raises:
        ValueError: on empty input, shape mismatch, or non-finite predictions/labels.
    """
    p = _as_float_array(pred, "predictions")
    t = _as_float_array(labels, "labels")
    k = task.num_outputs
    if p.ndim == 1 and k == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[1] != k:
        raise ValueError(f"predictions have shape {p.shape}, expected (N, {k}) for this task")

    if task.kind == "classification":
        if t.ndim == 1:
            t = t[:, None]
        if t.ndim != 2 or t.shape != (p.shape[0], 1):
            raise ValueError(
                f"labels have shape {t.shape}, expected ({p.shape[0]}, 1) class indices"
            )
        return classification_metrics(p, t, task.label_names)

    if t.ndim == 1 and k == 1:
        t = t[:, None]
    if t.shape != p.shape:
        raise ValueError(f"labels have shape {t.shape} but predictions {p.shape}")
    if task.kind == "regression":
        if task.is_sentiment:
            return sentiment_metrics(p[:, 0], t[:, 0])
        if k == 1:
            _check_finite(p, t)
            return {
                "mae": float(np.mean(np.abs(p[:, 0] - t[:, 0]))),
                "corr": pearson(p[:, 0], t[:, 0]),
            }
        return regression_metrics(p, t, task.label_names)
    if task.kind == "multilabel":
        return multilabel_metrics(p, t, task.label_names)
    raise ValueError(f"unknown task kind {task.kind!r}")


__all__ = [
    "PRIMARY_METRIC",
    "SENTIMENT_METRICS",
    "classification_metrics",
    "compute_metrics",
    "lower_is_better",
    "metric_names",
    "multilabel_metrics",
    "pearson",
    "regression_metrics",
    "sentiment_metrics",
]
