"""The real files under ../shared/data load with their real sizes (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmlatch.data.dataset import DataError
from mmlatch.data.inspect import describe_dataset, format_description
from mmlatch.data.readers import read_path
from mmlatch.data.readers.csd import load_folds, read_csd_words
from mmlatch.data.readers.mfn import read_mfn_labels

pytestmark = [pytest.mark.shared, pytest.mark.filterwarnings("ignore:.*not present in every split")]


def test_csd_words_file(shared_data: Path) -> None:
    words = read_csd_words(shared_data / "csd" / "CMU_MOSI_ModifiedTimestampedWords.csd")
    assert len(words) == 93
    assert sum(len(tokens) for tokens, _ in words.values()) == 51_056
    tokens, iv = words["03bSnISJMiM"]
    assert tokens[:4] == ["oh", "sp", "this", "sp"] and iv.shape == (480, 2)
    assert all((iv[:, 1] >= iv[:, 0]).all() for _, iv in words.values())
    # the directory holds tokens only: no numeric modality to build a dataset from
    with pytest.raises(DataError, match=r"no numeric modality"):
        read_path(shared_data / "csd", folds=shared_data / "folds" / "cmu_mosi.json")


def test_mosi_folds_match_the_words_file(shared_data: Path) -> None:
    folds = load_folds(shared_data / "folds" / "cmu_mosi.json")
    assert {s: len(v) for s, v in folds.items()} == {"train": 52, "valid": 10, "test": 31}
    words = read_csd_words(shared_data / "csd")
    assert set(words) == set().union(*folds.values())


@pytest.mark.parametrize(
    ("name", "sizes", "dims", "kind", "outputs"),
    [
        ("mmmo", (220, 40, 80), {"audio": 74, "visual": 36}, "regression", 1),
        ("youtube", (173, 36, 60), {"audio": 74, "visual": 36}, "classification", 3),
        ("pom", (600, 100, 203), {"audio": 43, "visual": 41}, "regression", 17),
    ],
)
def test_mfn_datasets(
    shared_data: Path,
    name: str,
    sizes: tuple[int, int, int],
    dims: dict[str, int],
    kind: str,
    outputs: int,
) -> None:
    ds = read_path(shared_data / "mfn" / name)
    assert ds.source.startswith("mfn:") and ds.modalities == (
        "audio",
        "visual",
    )  # text not in train
    assert tuple(len(ds.split(s)) for s in ("train", "valid", "test")) == sizes
    assert ds.modality_dims == dims
    assert ds.task.kind == kind and ds.task.num_outputs == outputs
    for s in ds.splits.values():
        assert s.features["audio"].shape[1] == 20
        np.testing.assert_array_equal(s.lengths["audio"], s.lengths["visual"])
    assert sum(n for per in ds.nonfinite.values() for n in per.values()) == 0
    assert f"[test] {sizes[2]} samples" in format_description(describe_dataset(ds))


def test_mmmo_label_range(shared_data: Path) -> None:
    ds = read_path(shared_data / "mfn" / "mmmo")
    assert ds.task.label_range == (1.0, 5.0)
    y = np.concatenate([s.labels for s in ds.splits.values()])
    assert y.min() == 1.0 and y.max() == 5.0


def test_mosi_mfn_labels(shared_data: Path) -> None:
    task, labels = read_mfn_labels(shared_data / "mosi" / "mfn_labels")
    assert task.is_sentiment
    assert {s: len(y) for s, y in labels.items()} == {"train": 1284, "valid": 229, "test": 686}
