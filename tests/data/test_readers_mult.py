"""MulT pickles: exact layout (text/audio/vision/labels/id, float32, front zero padding)."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmlatch.data.dataset import DataError
from mmlatch.data.readers import read_path
from mmlatch.data.readers.mult import read_mult


def _front_pad(rows: Sequence[Sequence[Sequence[float]]], length: int) -> np.ndarray:
    """Samples of valid steps -> (N, length, F) float32 with zero rows at the FRONT."""
    f = len(rows[0][0])
    out = np.zeros((len(rows), length, f), dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, length - len(r) :] = r
    return out


Rows = list[list[list[float]]]
# Valid steps per sample (word-aligned, L = 4). Sample 1's vision has a zero row at its first
# valid step (no face on that word): joint padding must keep it, so vision stays aligned.
TEXT: Rows = [[[1, 2], [3, 4], [5, 6], [7, 8]], [[9, 10], [11, 12]], [[13, 14]]]
AUDIO: Rows = [[[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]], [[5, 5, 5], [6, 6, 6]], [[7, 7, 7]]]
VISION: Rows = [[[0.5, 0.5], [0.25, 0.25], [1, 1], [2, 2]], [[0, 0], [3, 3]], [[4, 4]]]


def mult_split(labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    if labels is None:
        labels = np.array([1.5, -2.0, 0.0], dtype=np.float32).reshape(3, 1, 1)
    return {
        "text": _front_pad(TEXT, 4),
        "audio": _front_pad(AUDIO, 4),
        "vision": _front_pad(VISION, 4),
        "labels": labels,
        "id": np.array([[b"vidA", b"0", b"1.5"], [b"vidA", b"1.5", b"3"], [b"vidB", b"0", b"2"]]),
    }


def write(path: Path, obj: Any) -> Path:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


@pytest.fixture
def mosi_pkl(tmp_path: Path) -> Path:
    return write(tmp_path / "mosi_data.pkl", {s: mult_split() for s in ("train", "valid", "test")})


def test_front_padding_becomes_lengths_value_by_value(mosi_pkl: Path) -> None:
    ds = read_mult(mosi_pkl)
    assert ds.modalities == ("text", "audio", "visual")
    assert ds.task.is_sentiment and ds.source == f"mult:{mosi_pkl}" and ds.name == "mosi_data"
    s = ds.split("train")
    for m, rows in (("text", TEXT), ("audio", AUDIO), ("visual", VISION)):
        np.testing.assert_array_equal(s.lengths[m], [4, 2, 1])
        assert s.features[m].dtype == np.float32 and s.features[m].shape[1] == 4
        for i, r in enumerate(rows):
            np.testing.assert_array_equal(s.features[m][i, : len(r)], np.array(r, dtype=np.float32))
            assert not s.features[m][i, len(r) :].any()
    np.testing.assert_array_equal(s.labels, [[1.5], [-2.0], [0.0]])
    assert s.ids == ["vidA[0,1.5]", "vidA[1.5,3]", "vidB[0,2]"]
    assert ds.nonfinite == {
        sp: {"text": 0, "audio": 0, "visual": 0} for sp in ("train", "valid", "test")
    }


def test_unaligned_modalities_get_their_own_lengths(tmp_path: Path) -> None:
    split = mult_split()
    split["audio"] = _front_pad([[[1, 1, 1]] * 5, [[2, 2, 2]] * 3, [[3, 3, 3]]], 6)  # L = 6 != 4
    # dict(split): the three splits share the same array objects, as a pickle may; padding
    # removal must not run twice on them
    ds = read_mult(
        write(tmp_path / "mosi_noalign.pkl", {s: dict(split) for s in ("train", "valid", "test")})
    )
    for name in ("train", "test"):
        np.testing.assert_array_equal(ds.split(name).lengths["audio"], [5, 3, 1])
    s = ds.split("valid")
    np.testing.assert_array_equal(s.lengths["audio"], [5, 3, 1])
    np.testing.assert_array_equal(s.features["audio"][1, :4, 0], [2, 2, 2, 0])
    # vision alone: sample 1's zero first step now counts as padding
    np.testing.assert_array_equal(s.lengths["visual"], [4, 1, 1])
    np.testing.assert_array_equal(s.lengths["text"], [4, 2, 1])


def test_iemocap_labels_are_argmax_over_last_axis(tmp_path: Path) -> None:
    y = np.array(
        [
            [[1, 0], [0, 1], [1, 0], [1, 0]],
            [[0, 1], [1, 0], [1, 0], [1, 0]],
            [[1, 0], [1, 0], [0, 1], [0, 1]],
        ],
        dtype=np.float32,
    )  # (N, 4, 2)
    ds = read_mult(
        write(tmp_path / "iemocap_data.pkl", {s: mult_split(y) for s in ("train", "valid", "test")})
    )
    assert ds.task.kind == "multilabel" and ds.task.num_outputs == 4
    assert ds.task.label_names == ("neutral", "happy", "sad", "angry")
    np.testing.assert_array_equal(
        ds.split("test").labels, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1]]
    )


def test_nonfinite_counted_replaced_and_warned(tmp_path: Path) -> None:
    splits = {s: mult_split() for s in ("train", "valid", "test")}
    splits["train"]["audio"][0, 0, :2] = -np.inf  # a valid step of sample 0 (length 4)
    splits["train"]["audio"][1, 3, 0] = np.nan
    path = write(tmp_path / "mosei_senti_data.pkl", splits)
    with pytest.warns(UserWarning, match=r"replaced 3 non-finite .*train/audio=3"):
        ds = read_mult(path)
    assert ds.nonfinite["train"] == {"text": 0, "audio": 3, "visual": 0}
    a = ds.split("train").features["audio"]
    np.testing.assert_array_equal(a[0, 0], [0, 0, 1])
    np.testing.assert_array_equal(a[1, :2], [[5, 5, 5], [0, 6, 6]])
    np.testing.assert_array_equal(ds.split("train").lengths["audio"], [4, 2, 1])
    with pytest.raises(
        DataError, match=r"mosei_senti_data.pkl: split 'train', modality 'audio': 3 non-finite"
    ):
        read_mult(path, on_nonfinite="error")


def test_read_path_detects_mult(mosi_pkl: Path) -> None:
    assert read_path(mosi_pkl).source.startswith("mult:")
    assert read_path(str(mosi_pkl), format="mult").split("test").ids[2] == "vidB[0,2]"


# --- bad inputs: each names file, split and key -------------------------------------------


def _splits(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {s: mult_split() for s in ("train", "valid", "test")}
    for s, fn in changes.items():
        fn(out[s]) if callable(fn) else out.__setitem__(s, fn)
    return out


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"train": mult_split(), "valid": mult_split()}, r"missing split\(s\) \['test'\]"),
        (_splits(valid=lambda d: d.pop("labels")), r"split 'valid': missing key 'labels'"),
        (
            _splits(test=lambda d: d.__setitem__("text", d["text"][:, :, 0])),
            r"split 'test': key 'text' has shape \(3, 4\), expected \(N, L, F\)",
        ),
        (
            _splits(train=lambda d: d.__setitem__("audio", d["audio"][:2])),
            r"split 'train': key 'audio' has 2 samples but the labels have 3",
        ),
        (
            _splits(train=lambda d: d.__setitem__("labels", np.full((3, 1, 1), 4.0, np.float32))),
            r"split 'train': key 'labels': labels span \[4.000, 4.000\], outside the expected range \[-3.0, 3.0\]",
        ),
        (
            _splits(valid=lambda d: d.__setitem__("labels", np.zeros((3, 2), np.float32))),
            r"split 'valid': key 'labels' has shape \(3, 2\); expected \(N, 1, 1\)",
        ),
        (
            _splits(valid=lambda d: d.__setitem__("vision", np.full((3, 4, 2), "x"))),
            r"split 'valid': key 'vision' has dtype <U1, expected numbers",
        ),
        (_splits(test=[1, 2, 3]), r"split 'test': expected a dict of arrays, found list"),
        (
            _splits(test=lambda d: [d.pop(k) for k in ("text", "audio", "vision")]),
            r"split 'test': no modality key",
        ),
        ([1, 2], r"a MulT pickle holds a dict of splits, found list"),
    ],
)
def test_bad_mult_inputs(tmp_path: Path, data: Any, pattern: str) -> None:
    path = write(tmp_path / "bad.pkl", data)
    with pytest.raises(DataError, match=pattern) as info:
        read_mult(path)
    assert str(path) in str(info.value)


def test_truncated_mult_pickle(mosi_pkl: Path) -> None:
    raw = mosi_pkl.read_bytes()
    mosi_pkl.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"mosi_data.pkl: truncated pickle"):
        read_path(mosi_pkl)
