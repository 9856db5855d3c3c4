"""The own format: save_dataset -> load_own round trip, atomic write, detection, bad files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from mmlatch.data.convert import load_own, save_dataset
from mmlatch.data.dataset import DataError, MultimodalDataset, Split, TaskSpec
from mmlatch.data.readers import detect_format, read_path


def small_dataset() -> MultimodalDataset:
    rng = np.random.default_rng(0)
    splits = {}
    for name, n in (("train", 4), ("valid", 2), ("test", 3)):
        text = rng.normal(size=(n, 5, 3)).astype(np.float32)
        audio = rng.normal(size=(n, 7, 2)).astype(np.float32)
        lt = rng.integers(1, 6, size=n).astype(np.int64)
        la = rng.integers(1, 8, size=n).astype(np.int64)
        for i in range(n):
            text[i, lt[i] :] = 0
            audio[i, la[i] :] = 0
        splits[name] = Split(
            features={"text": text, "audio": audio},
            lengths={"text": lt, "audio": la},
            labels=rng.uniform(0, 1, size=(n, 4)).round().astype(np.float32),
            ids=[f"{name}_vid{i}[0]" for i in range(n)],
        )
    task = TaskSpec(
        kind="multilabel",
        num_outputs=4,
        label_names=("neutral", "happy", "sad", "angry"),
        label_range=None,
    )
    return MultimodalDataset(
        name="iemocap_data",
        splits=splits,
        task=task,
        feature_names={"audio": ["f0", "energy"]},
        source="mult:/data/iemocap_data.pkl",
        nonfinite={
            "train": {"text": 0, "audio": 5},
            "valid": {"text": 0, "audio": 0},
            "test": {"text": 0, "audio": 0},
        },
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    ds = small_dataset()
    out = save_dataset(ds, tmp_path / "sub" / "iemocap.npz")
    assert out == tmp_path / "sub" / "iemocap.npz"
    assert sorted(p.name for p in out.parent.iterdir()) == ["iemocap.npz"]  # no temp file left
    assert detect_format(out) == "own"
    back = read_path(out)
    assert back.source == f"own:{out}" and back.name == "iemocap_data"
    assert back.task == ds.task and back.modalities == ("text", "audio")
    assert back.feature_names == ds.feature_names and back.nonfinite == ds.nonfinite
    for name, s in ds.splits.items():
        b = back.split(name)
        assert b.ids == s.ids
        np.testing.assert_array_equal(b.labels, s.labels)
        for m in ds.modalities:
            np.testing.assert_array_equal(b.features[m], s.features[m])
            np.testing.assert_array_equal(b.lengths[m], s.lengths[m])
            assert b.features[m].dtype == np.float32 and b.lengths[m].dtype == np.int64
    assert read_path(out, format="npz").task == ds.task


def test_overwrite_is_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(b"old")
    save_dataset(small_dataset(), path)
    assert load_own(path).name == "iemocap_data"


def test_plain_npz_is_not_own(tmp_path: Path) -> None:
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(DataError, match=r"plain.npz: an .npz file without the '__mmlatch__' entry"):
        read_path(tmp_path / "plain.npz")
    with pytest.raises(DataError, match=r"plain.npz: not an mmlatch dataset file"):
        load_own(tmp_path / "plain.npz")


def test_truncated_own_file(tmp_path: Path) -> None:
    path = save_dataset(small_dataset(), tmp_path / "d.npz")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"d.npz: not a readable .npz .*truncated or corrupt"):
        read_path(path)
    with pytest.raises(DataError, match=r"d.npz: not a readable .npz .*truncated or corrupt"):
        read_path(path, format="own")


def test_missing_entry(tmp_path: Path) -> None:
    path = save_dataset(small_dataset(), tmp_path / "d.npz")
    kept = tmp_path / "k.npz"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(kept, "w") as zout:
        for item in zin.infolist():
            if item.filename != "valid/audio/lengths.npy":
                zout.writestr(item, zin.read(item.filename))
    with pytest.raises(DataError, match=r"k.npz: missing entry 'valid/audio/lengths'"):
        read_path(kept)
