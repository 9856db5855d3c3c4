"""CMU-MultimodalSDK .csd: real group layout, frame rates unlike word rates, "sp", labels, folds.

Expected values are worked out by hand in the comments: a frame belongs to a word when it
overlaps it by more than 1 ms; a word's value is the plain mean of its frames.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from mmlatch.data.dataset import DataError
from mmlatch.data.readers import read_path
from mmlatch.data.readers.csd import (
    SDK_FOLD_MODULES,
    average_overlapping_frames,
    load_folds,
    read_csd,
    read_csd_words,
)

Entry = tuple[np.ndarray, np.ndarray]  # (features, intervals)

# vidC's second label interval holds no word (skipped, warned); tests that check this say so
pytestmark = pytest.mark.filterwarnings("ignore:.*(skipped 1 label intervals|videos in no fold)")


def write_csd(path: Path, root: str, entries: dict[str, Entry]) -> Path:
    """A .csd in the SDK's layout: <root>/data/<vid>/{features,intervals}, <root>/metadata/*."""
    with h5py.File(path, "w") as f:
        g = f.create_group(root)
        data = g.create_group("data")
        for vid, (feats, iv) in entries.items():
            v = data.create_group(vid)
            v.create_dataset("features", data=feats)
            v.create_dataset("intervals", data=np.asarray(iv, dtype=np.float64))
        meta = g.create_group("metadata")
        vlen = h5py.special_dtype(vlen=bytes)
        for key, value in (("root name", root), ("computational sequence version", "1.0")):
            meta.create_dataset(key, (1,), dtype=vlen, data=[value.encode()])
    return path


def words(tokens: list[str], iv: list[list[float]]) -> Entry:
    return np.array([[t.encode()] for t in tokens]), np.array(iv, dtype=np.float64)


def frames(rate: float, values: np.ndarray, start: float = 0.0) -> Entry:
    """Frames of 1/rate seconds from ``start``; values (m, d)."""
    k = np.arange(values.shape[0])
    iv = np.stack([start + k / rate, start + (k + 1) / rate], axis=1)
    return values.astype(np.float64), iv


# video A: words at irregular times, with "sp" pauses
A_TOKENS = ["sp", "hello", "world", "sp", "good", "day"]
A_WORDS = [[0.0, 0.5], [0.5, 1.0], [1.0, 1.6], [1.6, 2.0], [2.0, 2.5], [2.5, 3.0]]
# audio: 5 Hz frames [0.2k, 0.2(k+1)], value (k, 10k)
A_AUDIO = frames(5.0, np.stack([np.arange(15), 10 * np.arange(15)], axis=1))
# visual: 1/0.3 Hz frames, only on [0, 0.9] and [2.7, 3.0] (no face in between); value k+1
A_VISUAL = (
    np.array([[1.0], [2.0], [3.0], [4.0]]),
    np.array([[0.0, 0.3], [0.3, 0.6], [0.6, 0.9], [2.7, 3.0]]),
)
A_LABELS = (np.array([[1.5], [-2.0]]), np.array([[0.4, 1.7], [2.0, 3.0]]))

# Hand-computed word averages (sp dropped):
#   hello [0.5,1.0]: audio frames k=2,3,4 (k=5 starts at 1.0: touches only) -> (3, 30)
#                    visual [0.3,0.6],[0.6,0.9] -> 2.5
#   world [1.0,1.6]: audio k=5,6,7 -> (6, 60); visual none -> 0
#   good  [2.0,2.5]: audio k=10,11,12 -> (11, 110); visual none -> 0
#   day   [2.5,3.0]: audio k=12,13,14 -> (13, 130); visual [2.7,3.0] -> 4
# Segment 0 [0.4,1.7] holds hello, world (sp [0,0.5] and [1.6,2.0] too when kept);
# segment 1 [2.0,3.0] holds good, day.

B_TOKENS = ["yes", "sp", "no"]
B_WORDS = [[0.0, 1.0], [1.0, 1.5], [1.5, 2.0]]
B_AUDIO = frames(4.0, np.ones((8, 2)) * np.arange(8)[:, None])  # k/4..(k+1)/4, value k
B_VISUAL = (np.array([[5.0], [7.0]]), np.array([[0.0, 1.2], [1.2, 2.0]]))
B_LABELS = (np.array([[0.5]]), np.array([[0.0, 2.0]]))
# yes [0,1]: audio k=0..3 -> 1.5; visual [0,1.2] -> 5.  no [1.5,2]: audio k=6,7 -> 6.5;
# visual [1.2,2.0] -> 7.  sp [1,1.5] (keep_sp): audio k=4,5 -> 4.5; visual both -> 6.

C_TOKENS = ["fine"]
C_WORDS = [[0.0, 0.4]]
C_AUDIO = frames(10.0, np.full((4, 2), 2.0))
C_VISUAL = (np.array([[9.0]]), np.array([[0.0, 0.4]]))
C_LABELS = (
    np.array([[-3.0], [1.0]]),
    np.array([[0.0, 0.4], [5.0, 6.0]]),
)  # 2nd: no word -> skipped


def build_corpus(
    root: Path, *, vectors: bool = False, labels: dict[str, Entry] | None = None
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_csd(
        root / "CMU_MOSI_TimestampedWords.csd",
        "words",
        {
            "vidA": words(A_TOKENS, A_WORDS),
            "vidB": words(B_TOKENS, B_WORDS),
            "vidC": words(C_TOKENS, C_WORDS),
        },
    )
    write_csd(
        root / "CMU_MOSI_COVAREP.csd",
        "COVAREP",
        {"vidA": A_AUDIO, "vidB": B_AUDIO, "vidC": C_AUDIO},
    )
    write_csd(
        root / "CMU_MOSI_Visual_Facet_42.csd",
        "FACET_4.2",
        {"vidA": A_VISUAL, "vidB": B_VISUAL, "vidC": C_VISUAL},
    )
    write_csd(
        root / "CMU_MOSI_Opinion_Labels.csd",
        "Opinion Segment Labels",
        labels or {"vidA": A_LABELS, "vidB": B_LABELS, "vidC": C_LABELS},
    )
    if vectors:  # word vectors: one 2-d vector per token (zeros for sp), same intervals

        def vec(tokens: list[str], iv: list[list[float]]) -> Entry:
            v = np.array([[0.0, 0.0] if t == "sp" else [len(t), ord(t[0])] for t in tokens])
            return v, np.array(iv)

        write_csd(
            root / "CMU_MOSI_TimestampedWordVectors.csd",
            "glove_vectors",
            {
                "vidA": vec(A_TOKENS, A_WORDS),
                "vidB": vec(B_TOKENS, B_WORDS),
                "vidC": vec(C_TOKENS, C_WORDS),
            },
        )
    return root


def folds_file(path: Path, folds: dict[str, list[str]] | None = None) -> Path:
    path.write_text(json.dumps(folds or {"train": ["vidA"], "valid": ["vidB"], "test": ["vidC"]}))
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return build_corpus(tmp_path / "mosi_csd")


@pytest.fixture
def folds(tmp_path: Path) -> Path:
    return folds_file(tmp_path / "folds.json")


def test_word_alignment_and_segments_value_by_value(corpus: Path, folds: Path) -> None:
    with pytest.warns(UserWarning, match="skipped 1 label intervals"):
        ds = read_path(corpus, folds=folds)
    assert ds.source == f"csd:{corpus}" and ds.task.is_sentiment
    assert ds.modalities == ("audio", "visual")  # the words file gives no numeric text
    tr = ds.split("train")
    assert tr.ids == ["vidA[0]", "vidA[1]"]
    np.testing.assert_array_equal(tr.lengths["audio"], [2, 2])
    np.testing.assert_array_equal(tr.lengths["visual"], [2, 2])
    np.testing.assert_allclose(tr.features["audio"][0, :2], [[3, 30], [6, 60]], rtol=1e-6)
    np.testing.assert_allclose(tr.features["audio"][1, :2], [[11, 110], [13, 130]], rtol=1e-6)
    np.testing.assert_allclose(tr.features["visual"][0, :2], [[2.5], [0.0]])
    np.testing.assert_allclose(tr.features["visual"][1, :2], [[0.0], [4.0]])
    np.testing.assert_array_equal(tr.labels, [[1.5], [-2.0]])
    va = ds.split("valid")
    assert va.ids == ["vidB[0]"]
    np.testing.assert_allclose(va.features["audio"][0, :2], [[1.5, 1.5], [6.5, 6.5]])
    np.testing.assert_allclose(va.features["visual"][0, :2], [[5.0], [7.0]])
    te = ds.split("test")
    assert te.ids == ["vidC[0]"] and len(te) == 1  # vidC[1] has no word
    np.testing.assert_allclose(te.features["audio"][0, :1], [[2.0, 2.0]])
    assert not te.features["audio"][0, 1:].any()
    assert tr.features["audio"].shape[1] == 2 and tr.features["audio"].dtype == np.float32


def test_keep_sp_keeps_pause_steps(corpus: Path, folds: Path) -> None:
    ds = read_csd(corpus, folds=folds, keep_sp=True)
    tr = ds.split("train")
    np.testing.assert_array_equal(tr.lengths["audio"], [4, 2])  # sp, hello, world, sp
    # sp [0,0.5]: audio k=0,1,2 -> (1, 10), visual [0,0.3],[0.3,0.6] -> 1.5;
    # sp [1.6,2.0]: audio k=8,9 -> (8.5, 85), visual none -> 0
    np.testing.assert_allclose(
        tr.features["audio"][0, :4], [[1.0, 10.0], [3.0, 30.0], [6.0, 60.0], [8.5, 85.0]], rtol=1e-6
    )
    np.testing.assert_allclose(tr.features["visual"][0, :4, 0], [1.5, 2.5, 0.0, 0.0])
    va = ds.split("valid")
    np.testing.assert_allclose(va.features["audio"][0, :3, 0], [1.5, 4.5, 6.5])
    np.testing.assert_allclose(va.features["visual"][0, :3, 0], [5.0, 6.0, 7.0])


def test_word_vectors_become_text(tmp_path: Path, folds: Path) -> None:
    corpus = build_corpus(tmp_path / "c", vectors=True)
    ds = read_csd(corpus, folds=folds)
    assert ds.modalities == ("text", "audio", "visual")
    # hello -> (5, ord('h')), world -> (5, ord('w'))
    np.testing.assert_array_equal(ds.split("train").features["text"][0, :2], [[5, 104], [5, 119]])


def test_max_len_cuts_segments(corpus: Path, folds: Path) -> None:
    ds = read_path(corpus, folds=folds, keep_sp=True, max_len=3)
    tr = ds.split("train")
    assert tr.features["audio"].shape[1] == 3
    np.testing.assert_array_equal(tr.lengths["visual"], [3, 2])


def test_csd_modalities_override_and_unknown_roots(tmp_path: Path, folds: Path) -> None:
    corpus = build_corpus(tmp_path / "c")
    (corpus / "CMU_MOSI_COVAREP.csd").rename(corpus / "mystery.csd")
    with h5py.File(corpus / "mystery.csd", "a") as f:
        f.move("COVAREP", "MyProsody")
    with pytest.warns(UserWarning, match="don't know which modality root 'MyProsody' is"):
        ds = read_csd(corpus, folds=folds)
    assert ds.modalities == ("visual",)
    ds = read_csd(corpus, folds=folds, csd_modalities={"MyProsody": "audio", "FACET_4.2": "ignore"})
    assert ds.modalities == ("audio",)
    np.testing.assert_allclose(
        ds.split("train").features["audio"][0, :2], [[3, 30], [6, 60]], rtol=1e-6
    )


def test_nonfinite_frames_counted_then_zeroed(tmp_path: Path, folds: Path) -> None:
    feats, iv = A_AUDIO
    feats = feats.copy()
    feats[3, 0] = -np.inf  # in hello
    feats[6, 1] = np.nan  # in world
    corpus = build_corpus(tmp_path / "c")
    write_csd(
        corpus / "CMU_MOSI_COVAREP.csd",
        "COVAREP",
        {"vidA": (feats, iv), "vidB": B_AUDIO, "vidC": C_AUDIO},
    )
    with pytest.warns(UserWarning, match=r"replaced 2 non-finite .*train/audio=2"):
        ds = read_csd(corpus, folds=folds)
    assert ds.nonfinite["train"]["audio"] == 2 and ds.nonfinite["valid"]["audio"] == 0
    # hello: (2 + 0 + 4) / 3 = 2, world: (50 + 0 + 70) / 3 = 40
    np.testing.assert_allclose(
        ds.split("train").features["audio"][0, :2], [[2, 30], [6, 40]], rtol=1e-6
    )
    with pytest.raises(
        DataError, match=r"COVAREP.csd: split 'train', modality 'audio': 2 non-finite"
    ):
        read_csd(corpus, folds=folds, on_nonfinite="error")


def test_average_in_intervals_unsorted_overlapping_frames() -> None:
    ref = np.array([[0.0, 1.0], [1.0, 2.0], [5.0, 6.0]])
    iv = np.array([[0.5, 1.5], [0.0, 3.0], [0.2, 0.4]])  # ends not monotone after sorting by start
    feats = np.array([[2.0], [4.0], [9.0]])
    # word 0: all three -> 5; word 1: [0.5,1.5], [0,3] -> 3; word 2: none -> 0
    np.testing.assert_allclose(average_overlapping_frames(ref, iv, feats), [[5.0], [3.0], [0.0]])


def test_load_folds(tmp_path: Path) -> None:
    assert load_folds(folds_file(tmp_path / "f.json")) == {
        "train": ["vidA"],
        "valid": ["vidB"],
        "test": ["vidC"],
    }


def test_read_csd_words(corpus: Path) -> None:
    w = read_csd_words(corpus / "CMU_MOSI_TimestampedWords.csd")
    assert sorted(w) == ["vidA", "vidB", "vidC"]
    assert w["vidA"][0] == A_TOKENS
    np.testing.assert_array_equal(w["vidA"][1], A_WORDS)
    assert read_csd_words(corpus)["vidB"][0] == B_TOKENS  # the one string-featured file


# --- bad inputs ---------------------------------------------------------------------------


def test_no_folds_and_no_sdk(corpus: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("mmsdk") is not None:  # pragma: no cover
        pytest.skip("mmsdk installed: its standard folds would be used")
    with pytest.raises(
        DataError, match=r"standard CMU_MOSI folds need the cmu-multimodal-sdk .*--folds FILE"
    ):
        read_csd(corpus)


def test_sdk_standard_folds_used_when_installed(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a stand-in for the installed cmu-multimodal-sdk: the same file at the same place
    pkg = tmp_path / "site" / "mmsdk"
    folds_py = pkg / Path(*SDK_FOLD_MODULES["CMU_MOSI"].split(".")[1:]).with_suffix(".py")
    folds_py.parent.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('the SDK must not be imported')\n")
    folds_py.write_text(
        "standard_train_fold=['vidB']\nstandard_valid_fold=['vidC']\nstandard_test_fold=['vidA']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    ds = read_csd(corpus)  # the file names say CMU_MOSI
    assert ds.split("train").ids == ["vidB[0]"]
    assert ds.split("test").ids == ["vidA[0]", "vidA[1]"]


@pytest.mark.parametrize(
    ("folds", "pattern"),
    [
        ({"train": ["vidA"], "valid": ["vidB"]}, r"f.json: missing split\(s\) \['test'\]"),
        (
            {"train": ["vidA"], "valid": ["vidA"], "test": []},
            r"f.json: video 'vidA' is in both 'train' and 'valid'",
        ),
        (
            {"train": "vidA", "valid": [], "test": []},
            r"f.json: split 'train' must be a list of video id strings",
        ),
        (
            {"train": ["x"], "valid": ["y"], "test": ["z"]},
            r"no segments for split\(s\) \['train', 'valid', 'test'\]",
        ),
    ],
)
def test_bad_folds(corpus: Path, tmp_path: Path, folds: dict[str, Any], pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        read_csd(corpus, folds=folds_file(tmp_path / "f.json", folds))


def test_folds_not_json(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text("{train: [")
    with pytest.raises(DataError, match=r"f.json: not valid JSON"):
        read_csd(corpus, folds=tmp_path / "f.json")


def test_missing_labels_file(corpus: Path, folds: Path) -> None:
    (corpus / "CMU_MOSI_Opinion_Labels.csd").unlink()
    with pytest.raises(DataError, match=r"no labels .csd"):
        read_csd(corpus, folds=folds)


def test_words_only_directory(tmp_path: Path, corpus: Path) -> None:
    only = tmp_path / "only"
    only.mkdir()
    (corpus / "CMU_MOSI_TimestampedWords.csd").rename(only / "w.csd")
    with pytest.raises(DataError, match=r"no numeric modality .*read them with read_csd_words"):
        read_path(only)


def test_corrupt_csd(corpus: Path, folds: Path) -> None:
    raw = (corpus / "CMU_MOSI_COVAREP.csd").read_bytes()
    (corpus / "CMU_MOSI_COVAREP.csd").write_bytes(raw[:200])
    with pytest.raises(DataError, match=r"CMU_MOSI_COVAREP.csd: not a readable HDF5 file"):
        read_csd(corpus, folds=folds)


def test_missing_intervals_key(corpus: Path, folds: Path) -> None:
    with h5py.File(corpus / "CMU_MOSI_COVAREP.csd", "a") as f:
        del f["COVAREP/data/vidB/intervals"]
    with pytest.raises(
        DataError, match=r"COVAREP.csd, split 'valid', video 'vidB': missing key 'intervals'"
    ):
        read_csd(corpus, folds=folds)


def test_features_rows_mismatch_intervals(corpus: Path, folds: Path) -> None:
    write_csd(
        corpus / "CMU_MOSI_COVAREP.csd",
        "COVAREP",
        {"vidA": (A_AUDIO[0][:3], A_AUDIO[1]), "vidB": B_AUDIO, "vidC": C_AUDIO},
    )
    with pytest.raises(
        DataError,
        match=r"split 'train', video 'vidA': key 'features' has shape \(3, 2\) but 'intervals' has 15 rows",
    ):
        read_csd(corpus, folds=folds)


def test_labels_out_of_range(tmp_path: Path, folds: Path) -> None:
    labels = {"vidA": A_LABELS, "vidB": (np.array([[4.0]]), B_LABELS[1]), "vidC": C_LABELS}
    corpus = build_corpus(tmp_path / "c", labels=labels)
    with pytest.raises(
        DataError,
        match=r"Opinion_Labels.csd, split 'valid': key 'features': labels span \[4.000, 4.000\]",
    ):
        read_csd(corpus, folds=folds)


def test_two_files_for_one_modality(corpus: Path, folds: Path) -> None:
    write_csd(corpus / "CMU_MOSI_openSMILE.csd", "openSMILE", {"vidA": A_AUDIO})
    with pytest.raises(DataError, match=r"two .csd files map to 'audio'"):
        read_csd(corpus, folds=folds)


def test_wrong_root_layout(corpus: Path, folds: Path) -> None:
    with h5py.File(corpus / "bad.csd", "w") as f:
        f.create_dataset("features", data=np.zeros(3))
    with pytest.raises(DataError, match=r"bad.csd: expected one root group holding 'data'"):
        read_csd(corpus, folds=folds)
