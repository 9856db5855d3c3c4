"""describe_dataset / format_description on small hand-made datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmlatch.data.dataset import MultimodalDataset, Split, TaskSpec
from mmlatch.data.inspect import describe_dataset, format_description


def _split(labels: list[list[float]], lengths: list[int]) -> Split:
    n = len(labels)
    x = np.zeros((n, 4, 2), dtype=np.float32)
    for i, ln in enumerate(lengths):
        x[i, :ln] = 1
    return Split(
        features={"audio": x, "visual": np.ones((n, 3, 5), dtype=np.float32)},
        lengths={
            "audio": np.array(lengths, dtype=np.int64),
            "visual": np.full(n, 3, dtype=np.int64),
        },
        labels=np.array(labels, dtype=np.float32),
        ids=[f"v{i}" for i in range(n)],
    )


def test_regression_description() -> None:
    ds = MultimodalDataset(
        name="mmmo",
        splits={
            "train": _split([[1.0], [2.0], [4.0], [5.0]], [1, 2, 3, 4]),
            "test": _split([[3.0]], [2]),
        },
        task=TaskSpec(label_range=(1.0, 5.0)),
        source="mfn:/data/mmmo",
        nonfinite={"train": {"audio": 3, "visual": 0}},
    )
    d = describe_dataset(ds)
    json.dumps(d)  # plain types only
    assert d["format"] == "mfn" and d["source"] == "/data/mmmo" and d["name"] == "mmmo"
    assert d["modalities"] == ["audio", "visual"] and d["feature_dims"] == {"audio": 2, "visual": 5}
    tr = d["splits"]["train"]
    assert tr["size"] == 4
    assert tr["lengths"]["audio"] == {"max_len": 4, "mean": 2.5, "min": 1.0, "max": 4.0}
    assert tr["labels"]["sentiment"] == pytest.approx(
        {"mean": 3.0, "std": np.sqrt(2.5), "min": 1.0, "max": 5.0}
    )
    assert tr["nonfinite"] == {"audio": 3, "visual": 0}
    assert d["splits"]["test"]["nonfinite"] == {"audio": 0, "visual": 0}
    assert d["nonfinite_total"] == 3 and d["task"]["label_range"] == [1.0, 5.0]
    text = format_description(d)
    for piece in (
        "format    mfn",
        "[train] 4 samples",
        "audio   L=4",
        "length min 1 / mean 2.5 / max 4",
        "non-finite 3",
        "label sentiment",
        "mean +3.000",
        "features  audio 2, visual 5",
    ):
        assert piece in text, piece


def test_multilabel_description() -> None:
    task = TaskSpec(
        kind="multilabel", num_outputs=2, label_names=("happy", "sad"), label_range=None
    )
    ds = MultimodalDataset(
        "iemocap",
        {"train": _split([[1, 0], [1, 1], [0, 0], [1, 0]], [4, 4, 4, 4])},
        task,
        source="mult:x.pkl",
    )
    d = describe_dataset(ds)
    assert d["splits"]["train"]["labels"]["happy"]["mean"] == 0.75
    assert d["splits"]["train"]["labels"]["sad"]["mean"] == 0.25
    assert "label happy" in format_description(d)


def test_classification_description() -> None:
    task = TaskSpec(
        kind="classification",
        num_outputs=3,
        label_names=("negative", "neutral", "positive"),
        label_range=None,
    )
    ds = MultimodalDataset(
        "youtube", {"train": _split([[2], [0], [2], [2]], [1, 1, 1, 1])}, task, source="mfn:yt"
    )
    d = describe_dataset(ds)
    assert d["splits"]["train"]["labels"] == {"negative": 1, "neutral": 0, "positive": 3}
    assert "classes negative 1, neutral 0, positive 3" in format_description(d)
