"""The in-memory multimodal dataset every reader produces.

A dataset is a set of named splits (``train``/``valid``/``test``); each split holds, per
modality, one end-padded float32 array ``(N, L_k, F_k)`` plus the true length of every
sample, the labels and the sample ids. Readers strip whatever padding their format uses
(MulT pads at the front) so that the valid steps of sample ``i`` are always
``features[k][i, :lengths[k][i]]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SPLITS: tuple[str, ...] = ("train", "valid", "test")

TaskKind = Literal["regression", "classification", "multilabel"]


class DataError(ValueError):
    """Raised for any problem with input data; the message names file, split and key."""


@dataclass(frozen=True)
class TaskSpec:
    """What the labels are and how to learn and score them.

    Attributes:
        kind: ``regression`` (one or more real-valued outputs, L1 loss), ``classification``
            (one label out of ``num_classes``, cross-entropy) or ``multilabel`` (several
            binary tasks, e.g. IEMOCAP's 4 emotions, binary cross-entropy).
        num_outputs: width of the model's prediction (regression columns, classes, or
            binary tasks).
        label_names: a name per output column (regression/multilabel) or per class.
        label_range: the expected value range of regression labels, checked on load.
    """

    kind: TaskKind = "regression"
    num_outputs: int = 1
    label_names: tuple[str, ...] = ("sentiment",)
    label_range: tuple[float, float] | None = (-3.0, 3.0)

    @classmethod
    def from_dict(cls, values: dict) -> TaskSpec:
        """Inverse of ``dataclasses.asdict`` (JSON turns tuples into lists)."""
        lr = values.get("label_range")
        return cls(
            kind=values["kind"],
            num_outputs=int(values["num_outputs"]),
            label_names=tuple(values["label_names"]),
            label_range=None if lr is None else (float(lr[0]), float(lr[1])),
        )

    @property
    def is_sentiment(self) -> bool:
        """True for single-output sentiment regression in [-3, 3] (the paper's metrics)."""
        return (
            self.kind == "regression"
            and self.num_outputs == 1
            and self.label_range is not None
            and tuple(self.label_range) == (-3.0, 3.0)
        )


@dataclass
class Split:
    """One split of a dataset.

    Attributes:
        features: modality -> float32 array (N, L_k, F_k), valid steps first, zeros after.
        lengths: modality -> int64 array (N,), each in [1, L_k].
        labels: float32 array (N, num_outputs); (N, 1) class indices as floats for
            classification.
        ids: N sample ids.
        texts: N raw texts (each sample's transcript), where the source has them (MMSA
            pickles' ``raw_text``, ``mmlatch extract``'s words); None otherwise. Models that
            run a text encoder themselves read them (``text_encoder: finetune``).
    """

    features: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    labels: np.ndarray
    ids: list[str]
    texts: list[str] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class MultimodalDataset:
    """Splits plus what is shared by them: modality order, feature sizes, task.

    ``modalities`` fixes the key order every model uses.
    """

    name: str
    splits: dict[str, Split]
    task: TaskSpec = field(default_factory=TaskSpec)
    feature_names: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""
    #: split -> modality -> number of non-finite feature values found (and replaced) on load
    nonfinite: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the extraction spec of features made by ``mmlatch extract`` (None for other sources)
    extraction: dict | None = None

    def __post_init__(self) -> None:
        if not self.splits:
            raise DataError(f"dataset {self.name!r}: no splits")
        self.validate()

    @property
    def modalities(self) -> tuple[str, ...]:
        first = next(iter(self.splits.values()))
        return tuple(first.features)

    @property
    def has_texts(self) -> bool:
        """Whether every split carries each sample's raw text (:attr:`Split.texts`)."""
        return all(s.texts is not None for s in self.splits.values())

    @property
    def modality_dims(self) -> dict[str, int]:
        first = next(iter(self.splits.values()))
        return {k: int(v.shape[2]) for k, v in first.features.items()}

    def split(self, name: str) -> Split:
        """Return split ``name`` or raise a DataError listing the splits there are."""
        if name not in self.splits:
            raise DataError(
                f"dataset {self.name!r} has no split {name!r}; it has {sorted(self.splits)}"
            )
        return self.splits[name]

    def select_modalities(self, modalities: list[str] | tuple[str, ...]) -> MultimodalDataset:
        """A view of this dataset restricted to ``modalities`` (in that order); no copies."""
        missing = [m for m in modalities if m not in self.modalities]
        if missing:
            raise DataError(
                f"dataset {self.name!r} has no modality {missing}; it has {list(self.modalities)}"
            )
        if not modalities:
            raise DataError("at least one modality must be selected")
        splits = {
            name: Split(
                features={m: s.features[m] for m in modalities},
                lengths={m: s.lengths[m] for m in modalities},
                labels=s.labels,
                ids=s.ids,
                texts=s.texts,
            )
            for name, s in self.splits.items()
        }
        names = {m: v for m, v in self.feature_names.items() if m in modalities}
        return MultimodalDataset(self.name, splits, self.task, names, self.source, self.nonfinite, self.extraction)

    def validate(self) -> None:
        """Check shapes, dtypes, lengths and labels of every split; raise DataError."""
        dims: dict[str, int] | None = None
        for sname, s in self.splits.items():
            where = f"dataset {self.name!r}, split {sname!r}"
            n = s.labels.shape[0] if s.labels.ndim >= 1 else -1
            width = 1 if self.task.kind == "classification" else self.task.num_outputs
            if s.labels.ndim != 2 or s.labels.shape[1] != width:
                raise DataError(
                    f"{where}: labels have shape {s.labels.shape}, expected (N, {width})"
                )
            if len(s.ids) != n:
                raise DataError(f"{where}: {len(s.ids)} ids for {n} labels")
            if s.texts is not None:
                if len(s.texts) != n:
                    raise DataError(f"{where}: {len(s.texts)} texts for {n} labels")
                bad = next((i for i, t in enumerate(s.texts) if not isinstance(t, str)), None)
                if bad is not None:
                    raise DataError(f"{where}: text {bad} is a {type(s.texts[bad]).__name__}, not a string")
            if set(s.features) != set(s.lengths):
                raise DataError(f"{where}: features {sorted(s.features)} but lengths {sorted(s.lengths)}")
            if not s.features:
                raise DataError(f"{where}: no modalities")
            sdims = {}
            for m, x in s.features.items():
                if x.ndim != 3:
                    raise DataError(f"{where}, modality {m!r}: features have shape {x.shape}, expected (N, L, F)")
                if x.shape[0] != n:
                    raise DataError(
                        f"{where}, modality {m!r}: {x.shape[0]} samples but {n} labels"
                    )
                if x.dtype != np.float32:
                    raise DataError(f"{where}, modality {m!r}: dtype {x.dtype}, expected float32")
                ln = s.lengths[m]
                if ln.shape != (n,):
                    raise DataError(f"{where}, modality {m!r}: lengths shape {ln.shape}, expected ({n},)")
                if n and (ln.min() < 1 or ln.max() > x.shape[1]):
                    raise DataError(
                        f"{where}, modality {m!r}: lengths must lie in [1, {x.shape[1]}], "
                        f"found [{ln.min()}, {ln.max()}]"
                    )
                sdims[m] = int(x.shape[2])
            if dims is None:
                dims = sdims
            elif list(sdims.items()) != list(dims.items()):
                raise DataError(f"{where}: modalities/dims {sdims} differ from other splits' {dims}")
            if not np.isfinite(s.labels).all():
                raise DataError(f"{where}: labels contain NaN or inf")
            if self.task.kind == "classification" and n:
                y = s.labels[:, 0]
                if (y != np.round(y)).any() or y.min() < 0 or y.max() >= self.task.num_outputs:
                    raise DataError(
                        f"{where}: classification labels must be whole class indices in "
                        f"[0, {self.task.num_outputs}), found [{y.min()}, {y.max()}]"
                    )
            lr = self.task.label_range
            if self.task.kind == "regression" and lr is not None and n:
                lo, hi = float(s.labels.min()), float(s.labels.max())
                if lo < lr[0] - 1e-6 or hi > lr[1] + 1e-6:
                    raise DataError(
                        f"{where}: labels span [{lo:.3f}, {hi:.3f}], outside the expected "
                        f"range [{lr[0]}, {lr[1]}]"
                    )


def lengths_from_padding(x: np.ndarray) -> np.ndarray:
    """Lengths of end-padded sequences: index after the last step with a non-zero feature.

    Args:
        x: (N, L, F) array with zero rows as padding at the end.
    Returns:
        (N,) int64, at least 1 (an all-zero sample keeps one step).
    """
    nonzero = np.any(x != 0, axis=2)  # (N, L)
    last = x.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    last[~nonzero.any(axis=1)] = 1
    return last.astype(np.int64)
