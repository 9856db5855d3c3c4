"""MMSA pickles: regression_labels, per-modality lengths, text_bert mask, ids video$_$clip."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmlatch.data.dataset import DataError
from mmlatch.data.readers import read_path
from mmlatch.data.readers.mmsa import read_mmsa

N = 3


def unaligned_split() -> dict[str, Any]:
    """One split of ``unaligned_50.pkl`` in miniature: text L=4 (BERT dim 2), audio L=5, vision L=3."""
    text = (
        np.arange(N * 4 * 2, dtype=np.float32).reshape(N, 4, 2) + 1
    )  # BERT: pad tokens are non-zero too
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=np.float32)
    text_bert = np.stack([np.ones((N, 4)), mask, np.zeros((N, 4))], axis=1).astype(
        np.float32
    )  # (N, 3, L)
    audio = np.zeros((N, 5, 2), dtype=np.float32)
    audio[0] = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
    audio[1, :2] = [[1, 1], [2, 2]]
    vision = np.zeros((N, 3, 2), dtype=np.float32)
    vision[0, :1] = 7
    vision[1, :3] = [[1, 0], [0, 0], [2, 0]]  # a zero row inside a given length stays
    vision[2, :2] = 5
    return {
        "raw_text": np.array(["a good film", "bad", "it was ok"], dtype=object),
        "text": text,
        "text_bert": text_bert,
        "audio": audio,
        "vision": vision,
        "audio_lengths": np.array([5, 2, 0]),
        "vision_lengths": np.array([1, 3, 2]),
        "id": np.array(["vidA$_$1", "vidA$_$2", "vidB$_$1"], dtype=object),
        "annotations": np.array(["Positive", "Negative", "Neutral"], dtype=object),
        "regression_labels": np.array([2.2, -1.4, 0.0], dtype=np.float32),
        "classification_labels": np.array([2, 0, 1], dtype=np.float32),
    }


def write(path: Path, obj: Any) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def test_unaligned_lengths_and_labels_value_by_value(tmp_path: Path) -> None:
    ds = read_mmsa(
        write(
            tmp_path / "unaligned_50.pkl",
            {s: unaligned_split() for s in ("train", "valid", "test")},
        )
    )
    assert ds.source.startswith("mmsa:") and ds.task.is_sentiment
    assert ds.modalities == ("text", "audio", "visual")
    s = ds.split("valid")
    np.testing.assert_array_equal(s.lengths["text"], [4, 2, 3])  # attention-mask sums
    np.testing.assert_array_equal(s.lengths["audio"], [5, 2, 1])  # 0 raised to 1
    np.testing.assert_array_equal(s.lengths["visual"], [1, 3, 2])
    raw = unaligned_split()
    np.testing.assert_array_equal(s.features["text"][1, :2], raw["text"][1, :2])
    assert (
        not s.features["text"][1, 2:].any() and not s.features["text"][2, 3:].any()
    )  # pads zeroed
    np.testing.assert_array_equal(s.features["audio"][0], raw["audio"][0])
    np.testing.assert_array_equal(s.features["visual"][1], [[1, 0], [0, 0], [2, 0]])
    np.testing.assert_allclose(s.labels, [[2.2], [-1.4], [0.0]])
    assert s.ids == ["vidA$_$1", "vidA$_$2", "vidB$_$1"]


def test_aligned_file_end_padding_detected_jointly(tmp_path: Path) -> None:
    split = unaligned_split()
    for k in ("audio_lengths", "vision_lengths", "text_bert"):
        split.pop(k)
    split["audio"] = split["audio"][:, :4]
    split["vision"] = np.zeros((N, 4, 2), np.float32)
    split["vision"][1, 2] = 9  # vision of sample 1 reaches step 3: the joint length is 3
    split["text"][1, 2:] = 0
    split["audio"][1, 3:] = 0
    ds = read_path(
        write(tmp_path / "aligned_50.pkl", {s: split for s in ("train", "valid", "test")})
    )
    assert ds.source.startswith("mmsa:")
    s = ds.split("test")
    for m in ("text", "audio", "visual"):
        np.testing.assert_array_equal(s.lengths[m], [4, 3, 4])


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda d: d.pop("regression_labels"), r"split 'train': missing key 'regression_labels'"),
        (
            lambda d: d.__setitem__("audio_lengths", np.array([6, 1, 1])),
            r"split 'train': key 'audio_lengths': lengths span \[1, 6\], outside \[0, 5\]",
        ),
        (
            lambda d: d.__setitem__("vision_lengths", np.array([1, 1])),
            r"split 'train': key 'vision_lengths' has shape \(2,\), expected \(3,\)",
        ),
        (
            lambda d: d.__setitem__("vision", d["vision"][:2]),
            r"split 'train': key 'vision' has 2 samples but the labels have 3",
        ),
        (
            lambda d: d.__setitem__("regression_labels", np.array([0, 3.5, 0], np.float32)),
            r"split 'train': key 'regression_labels': labels span \[0.000, 3.500\], outside",
        ),
        (
            lambda d: d.__setitem__("regression_labels", np.zeros((3, 2), np.float32)),
            r"split 'train': key 'regression_labels' has shape \(3, 2\), expected \(N,\)",
        ),
        (
            lambda d: d.__setitem__("text_bert", np.zeros((3, 4), np.float32)),
            r"split 'train': key 'text_bert' has shape \(3, 4\), expected \(3, 3, L\)",
        ),
        (
            lambda d: d.__setitem__("audio", list(d["audio"])),
            r"split 'train': key 'audio' is a list, expected a numpy array",
        ),
    ],
)
def test_bad_mmsa_inputs(tmp_path: Path, change: Any, pattern: str) -> None:
    data = {s: unaligned_split() for s in ("train", "valid", "test")}
    change(data["train"])
    path = write(tmp_path / "unaligned_50.pkl", data)
    with pytest.raises(DataError, match=pattern) as info:
        read_mmsa(path)
    assert str(path) in str(info.value)


def test_mmsa_missing_split(tmp_path: Path) -> None:
    path = write(
        tmp_path / "aligned_50.pkl", {"train": unaligned_split(), "test": unaligned_split()}
    )
    with pytest.raises(DataError, match=r"aligned_50.pkl: missing split\(s\) \['valid'\]"):
        read_path(path)
