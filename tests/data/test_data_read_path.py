"""read_path: format detection, forcing, and the errors for paths it cannot read."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from mmlatch.data import load_dataset
from mmlatch.data.dataset import DataError
from mmlatch.data.readers import detect_format, read_path


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere.pkl: no such file or directory"):
        read_path(tmp_path / "nowhere.pkl")
    with pytest.raises(DataError, match=r"nowhere: no such file or directory"):
        read_path(tmp_path / "nowhere", format="mfn")


def test_unknown_format_name(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"unknown data format 'hdf5'; expected one of \['mult', 'mmsa', 'csd', 'mfn', 'own'",
    ):
        read_path(tmp_path, format="hdf5")


def test_unknown_directory_and_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"a directory with neither .csd files .* nor y_train.h5"):
        read_path(tmp_path)
    with pytest.raises(DataError, match=r"notes.txt: unknown data format .*--format"):
        read_path(tmp_path / "notes.txt")
    with h5py.File(tmp_path / "audio_train.h5", "w") as f:
        f.create_dataset("d1", data=np.zeros(2))
    with pytest.raises(DataError, match=r"a single .h5 file; MFN data is read from its directory"):
        read_path(tmp_path / "audio_train.h5")


def test_pickle_kinds(tmp_path: Path) -> None:
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"train": {"x": np.zeros(2)}, "valid": {}, "test": {}}))
    with pytest.raises(
        DataError,
        match=r"data.pkl, split 'train': neither 'labels' \(MulT\) nor 'regression_labels' \(MMSA\)",
    ):
        read_path(path)
    path.write_bytes(pickle.dumps([np.zeros(2)]))
    with pytest.raises(
        DataError, match=r"data.pkl: a pickle without train/valid/test split dicts \(found list\)"
    ):
        read_path(path)
    assert detect_format(path) == "pickle"


def test_forced_format_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "mosi_data.pkl"
    split = {"text": np.ones((2, 3, 4), np.float32), "labels": np.zeros((2, 1, 1), np.float32)}
    path.write_bytes(pickle.dumps({s: dict(split) for s in ("train", "valid", "test")}))
    with pytest.raises(
        DataError, match=r"mosi_data.pkl, split 'train': missing key 'regression_labels'"
    ):
        read_path(path, format="mmsa")
    with pytest.raises(DataError, match=r"mosi_data.pkl: "):
        read_path(path, format="own")
    with pytest.raises(
        DataError, match=r"mosi_data.pkl: no .csd files|mosi_data.pkl: not a readable HDF5"
    ):
        read_path(path, format="csd")
    ds = load_dataset(str(path), modalities=["text"])  # through the project's entry point
    assert ds.modalities == ("text",) and len(ds.split("valid")) == 2


def test_options_checked(tmp_path: Path) -> None:
    path = tmp_path / "mosi_data.pkl"
    split = {"text": np.ones((2, 3, 4), np.float32), "labels": np.zeros((2, 1, 1), np.float32)}
    path.write_bytes(pickle.dumps({s: dict(split) for s in ("train", "valid", "test")}))
    with pytest.raises(DataError, match=r"folds/csd_modalities apply to .csd directories only"):
        read_path(path, folds=tmp_path / "f.json")
    with pytest.raises(
        DataError,
        match=r"reader option\(s\) \['max_len'\] not understood for MulT/MMSA pickle data",
    ):
        read_path(path, max_len=3)
    with pytest.raises(DataError, match=r"on_nonfinite must be 'zero' or 'error', got 'drop'"):
        read_path(path, on_nonfinite="drop")
