"""MFN HDF5 directories: one float64 ``d1`` dataset per split and modality, zero rows = padding."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from mmlatch.data.dataset import DataError
from mmlatch.data.readers import read_path
from mmlatch.data.readers.mfn import read_mfn, read_mfn_labels

SPLITS = ("train", "valid", "test")
L = 5


def h5(path: Path, data: np.ndarray, key: str = "d1") -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=data)


def features(f: int, offset: float) -> np.ndarray:
    """(3, L, f) float64, word-aligned: sample 0 front-padded (2 zero rows), sample 1
    end-padded (1 zero row) with an all-zero word inside, sample 2 full length."""
    x = np.zeros((3, L, f))
    x[0, 2:] = offset + np.arange(3)[:, None] + 0.125
    x[1, :4] = offset + 10 + np.arange(4)[:, None]
    x[1, 1] = 0  # a word with no features in any modality: kept, it is inside the sample
    x[2] = offset + 20 + np.arange(L)[:, None]
    return x


def build_mfn(
    root: Path,
    labels: dict[str, np.ndarray],
    *,
    text_splits: tuple[str, ...] = ("valid", "test"),
    key: str = "d1",
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        h5(root / f"audio_{s}.h5", features(3, 100))
        h5(root / f"video_{s}.h5", features(2, 200))
        if s in text_splits:
            h5(root / f"text_{s}_emb.h5", features(4, 300))
        h5(root / f"y_{s}.h5", labels[s], key=key)
    return root


MMMO_Y = {s: np.array([1.0, 4.5, 5.0]) for s in SPLITS}


@pytest.fixture
def mmmo(tmp_path: Path) -> Path:
    return build_mfn(tmp_path / "mmmo", MMMO_Y)


def test_padding_both_sides_and_float32_value_by_value(mmmo: Path) -> None:
    with pytest.warns(UserWarning, match=r"dropped: text only in \['valid', 'test'\]"):
        ds = read_path(mmmo)
    assert ds.source == f"mfn:{mmmo}" and ds.name == "mmmo"
    assert ds.modalities == ("audio", "visual")
    assert ds.task.kind == "regression" and ds.task.label_range == (1.0, 5.0)
    s = ds.split("train")
    a = s.features["audio"]
    assert a.dtype == np.float32 and a.shape == (3, L, 3)
    for m in ("audio", "visual"):
        np.testing.assert_array_equal(s.lengths[m], [3, 4, 5])
    np.testing.assert_array_equal(a[0, :, 0], [100.125, 101.125, 102.125, 0, 0])
    np.testing.assert_array_equal(a[1, :, 1], [110, 0, 112, 113, 0])
    np.testing.assert_array_equal(a[2, :, 2], 120 + np.arange(L))
    np.testing.assert_array_equal(s.features["visual"][0, :3, 1], [200.125, 201.125, 202.125])
    np.testing.assert_array_equal(s.labels, [[1.0], [4.5], [5.0]])
    assert s.ids == ["mmmo/train[0]", "mmmo/train[1]", "mmmo/train[2]"]


def test_text_kept_when_in_every_split(tmp_path: Path) -> None:
    ds = read_mfn(build_mfn(tmp_path / "m", MMMO_Y, text_splits=SPLITS))
    assert ds.modalities == ("text", "audio", "visual")
    np.testing.assert_array_equal(ds.split("test").features["text"][0, 0], [300.125] * 4)


def test_youtube_one_hot_is_classification(tmp_path: Path) -> None:
    y = {s: np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=np.float32) for s in SPLITS}
    ds = read_mfn(build_mfn(tmp_path / "youtube", y, text_splits=SPLITS))
    assert ds.task.kind == "classification" and ds.task.num_outputs == 3
    assert ds.task.label_names == ("negative", "neutral", "positive")
    np.testing.assert_array_equal(ds.split("valid").labels, [[2], [0], [1]])


def test_pom_17_columns(tmp_path: Path) -> None:
    y = {s: np.linspace(0.667, 7.0, 51).reshape(3, 17) for s in SPLITS}
    ds = read_mfn(build_mfn(tmp_path / "pom", y, text_splits=()))
    assert ds.task.kind == "regression" and ds.task.num_outputs == 17
    assert ds.task.label_names[0] == "pom_0" and ds.task.label_names[-1] == "pom_16"
    np.testing.assert_allclose(ds.split("test").labels, y["test"], rtol=1e-6)


def test_mosi_labels_under_data_are_sentiment(tmp_path: Path) -> None:
    y = {s: np.array([1.2, 2.0, 1.0]) for s in SPLITS}  # positive only, but stored as `data`
    root = build_mfn(tmp_path / "mosi", y, text_splits=SPLITS, key="data")
    task, labels = read_mfn_labels(root)
    assert task.is_sentiment
    np.testing.assert_allclose(labels["train"], [[1.2], [2.0], [1.0]], rtol=1e-6)


def test_nonfinite(tmp_path: Path) -> None:
    root = build_mfn(tmp_path / "m", MMMO_Y, text_splits=SPLITS)
    x = features(3, 100)
    x[2, 1, 0] = np.inf
    h5(root / "audio_test.h5", x)
    with pytest.warns(UserWarning, match=r"test/audio=1"):
        ds = read_mfn(root)
    assert ds.nonfinite["test"]["audio"] == 1 and ds.split("test").features["audio"][2, 1, 0] == 0
    with pytest.raises(
        DataError, match=r"audio_test.h5: split 'test', modality 'audio': 1 non-finite"
    ):
        read_mfn(root, on_nonfinite="error")


# --- bad inputs ---------------------------------------------------------------------------

pytestmark = pytest.mark.filterwarnings("ignore:.*not present in every split")


def test_missing_label_file(mmmo: Path) -> None:
    (mmmo / "y_test.h5").unlink()
    with pytest.raises(DataError, match=r"mmmo: missing label file\(s\) \['y_test.h5'\]"):
        read_mfn(mmmo)


def test_mismatched_n(mmmo: Path) -> None:
    h5(mmmo / "video_valid.h5", features(2, 0)[:2])
    with pytest.raises(
        DataError,
        match=r"video_valid.h5, split 'valid': key 'd1' has 2 samples but the labels have 3",
    ):
        read_mfn(mmmo)


def test_wrong_ndim(mmmo: Path) -> None:
    h5(mmmo / "audio_train.h5", np.zeros((3, 5)))
    with pytest.raises(
        DataError,
        match=r"audio_train.h5, split 'train': key 'd1' has shape \(3, 5\), expected \(N, L, F\)",
    ):
        read_mfn(mmmo)


def test_labels_out_of_range(mmmo: Path) -> None:
    h5(mmmo / "y_valid.h5", np.array([1.0, 6.0, 2.0]))
    with pytest.raises(
        DataError, match=r"mmmo: scalar labels span \[1.000, 6.000\]: neither sentiment"
    ):
        read_mfn(mmmo)


def test_pom_labels_out_of_range(tmp_path: Path) -> None:
    y = {s: np.full((3, 17), 3.0) for s in SPLITS}
    y["test"][1, 4] = 9.0
    with pytest.raises(
        DataError, match=r"y_test.h5, split 'test': key 'd1': labels span \[3.000, 9.000\]"
    ):
        read_mfn(build_mfn(tmp_path / "pom", y))


def test_label_shapes_differ(mmmo: Path) -> None:
    h5(mmmo / "y_valid.h5", np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"label shapes differ between splits"):
        read_mfn(mmmo)


def test_truncated_file(mmmo: Path) -> None:
    raw = (mmmo / "audio_valid.h5").read_bytes()
    (mmmo / "audio_valid.h5").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DataError, match=r"audio_valid.h5: not a readable HDF5 file"):
        read_mfn(mmmo)


def test_unknown_dataset_key(mmmo: Path) -> None:
    with h5py.File(mmmo / "video_test.h5", "w") as f:
        f.create_dataset("a", data=np.zeros((3, 5, 2)))
        f.create_dataset("b", data=np.zeros((3, 5, 2)))
    with pytest.raises(
        DataError,
        match=r"video_test.h5: expected one dataset named 'd1' or 'data', found keys \['a', 'b'\]",
    ):
        read_mfn(mmmo)


def test_no_feature_files(tmp_path: Path) -> None:
    root = tmp_path / "labels_only"
    root.mkdir()
    for s in SPLITS:
        h5(root / f"y_{s}.h5", np.array([0.5, -1.0]), key="data")
    with pytest.raises(DataError, match=r"labels_only: no modality has a file for every split"):
        read_path(root)
