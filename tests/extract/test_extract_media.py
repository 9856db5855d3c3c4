"""Real media made on the machine (espeak-ng speech + face / test-pattern video) through
``mmlatch extract`` and ``mmlatch predict --media``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mmlatch.cli.main import app

runner = CliRunner()
FAST = ["--fps", "2"]  # fewer frames through dlib: the tests stay fast


def _cli(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


def test_face_clip_word_aligned_within_100ms(test_media, tmp_path):
    out = tmp_path / "face.npz"
    r = _cli("extract", "--media", test_media["face"], "--transcript", test_media["text"], "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    z = np.load(out)
    doc = json.loads((tmp_path / "face.manifest.json").read_text())
    status = doc["clips"][0]
    n = len(test_media["text"].split())
    assert z["text"].shape == (1, n, 50) and z["audio"].shape == (1, n, 19) and z["visual"].shape == (1, n, 12)
    assert list(z["words"]) == test_media["text"].split()
    assert status["timing"] == "pocketsphinx", status  # forced alignment succeeds on this sentence
    err = np.abs(z["intervals"] - test_media["truth"])
    assert err.max() < 0.1, (z["intervals"], test_media["truth"])
    assert status["face_frames"] == status["frames"] > 0
    assert (z["visual"][0, :, 0] == 1).all()  # has_face on every word
    assert np.isfinite(z["visual"]).all() and np.isfinite(z["audio"]).all()
    assert doc["spec"]["visual"]["frame_rate"] == 2.0 and doc["spec"]["audio"]["frame_rate"] == 100.0


def test_no_face_clip_is_flagged_not_invented(test_media, tmp_path):
    out = tmp_path / "noface.npz"
    r = _cli("extract", "--media", test_media["noface"], "--transcript", test_media["text"], "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    z = np.load(out)
    status = json.loads((tmp_path / "noface.manifest.json").read_text())["clips"][0]
    assert status["face_frames"] == 0 and status["frames"] > 0
    assert (z["visual"][0, :, 0] == 0).all()
    assert np.isnan(z["visual"][0, :, 1:]).all()  # raw single-clip output: geometry absent, not zeros


def test_alignment_failure_falls_back_to_proportional(test_media, tmp_path):
    out = tmp_path / "f.npz"
    text = test_media["text"].replace("awesome", "zzxqv")  # not in the pocketsphinx dictionary
    r = _cli("extract", "--media", test_media["wav"], "--transcript", text, "--out", out, "--modalities", "text,audio")
    assert r.exit_code == 0, r.output
    status = json.loads((tmp_path / "f.manifest.json").read_text())["clips"][0]
    assert status["timing"] == "proportional" and "zzxqv" in status["fallback_reason"]
    iv = np.load(out)["intervals"]
    truth = test_media["truth"]
    # shared inside the detected speech: first start and last end near the true speech edges
    assert abs(iv[0, 0] - truth[0, 0]) < 0.1 and abs(iv[-1, 1] - truth[-1, 1]) < 0.1
    assert (np.diff(iv[:, 0]) > 0).all()


def _manifest(tmp_path: Path, test_media: dict) -> Path:
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    text = test_media["text"]
    rows = [
        ("v1", "1", text, "2.0", "train", test_media["face"]),
        ("v1", "2", text, "-1.0", "train", test_media["noface"]),
        ("v2", "1", text, "1.0", "valid", test_media["face"]),
        ("v3", "1", text, "-2.0", "test", test_media["noface"]),
        ("v3", "2", text, "0.0", "test", bad),
        ("v3", "3", " ... ", "0.0", "test", test_media["face"]),
    ]
    frame = pd.DataFrame(rows, columns=["video_id", "clip_id", "text", "label", "mode", "media"])
    path = tmp_path / "label.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def media_dataset(test_media, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ds")
    csv = _manifest(folder, test_media)
    out = folder / "clips.npz"
    r = _cli("extract", "--manifest", csv, "--out", out, "--no-progress", *FAST)
    assert r.exit_code == 0, r.output
    return {"csv": csv, "out": out, "output": r.output, "folder": folder}


def test_dataset_failures_recorded_and_summarised(media_dataset):
    from mmlatch.data import load_dataset

    doc = json.loads(media_dataset["out"].with_name("clips.manifest.json").read_text())
    by_id = {c["id"]: c for c in doc["clips"]}
    assert by_id["v3$_$2"]["status"] == "failed" and "cannot decode audio" in by_id["v3$_$2"]["reason"]
    assert by_id["v3$_$3"]["status"] == "failed" and "empty transcript" in by_id["v3$_$3"]["reason"]
    assert doc["summary"]["ok"] == 4 and doc["summary"]["failed"] == 2
    assert "2 clip(s) failed" in media_dataset["output"]
    assert by_id["v1$_$2"]["face_frames"] == 0 and by_id["v1$_$1"]["face_frames"] > 0
    ds = load_dataset(str(media_dataset["out"]))
    assert ds.extraction is not None and ds.modalities == ("text", "audio", "visual")
    assert [len(s) for s in ds.splits.values()] == [2, 1, 1]
    # normalisation from the train split only: train audio rows have mean 0
    tr = ds.splits["train"]
    rows = np.concatenate([tr.features["audio"][i, : tr.lengths["audio"][i]] for i in range(len(tr))])
    np.testing.assert_allclose(rows.mean(0), 0, atol=1e-4)
    assert len(doc["spec"]["normalisation"]["audio"]["mean"]) == 19
    assert not media_dataset["out"].with_name("clips.npz.parts").exists()


def test_predict_from_media_and_spec_refusals(media_dataset, test_media, tmp_path):
    run = tmp_path / "run"
    r = _cli("train", "--data", media_dataset["out"], "--model", "mmlatch", "--epochs", "1", "--out", run,
             "--no-progress", "--set", "model_args.hidden=8")
    assert r.exit_code == 0, r.output
    r = _cli("predict", "--run", run, "--media", test_media["face"], "--transcript", test_media["text"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output[r.output.index("{"):])
    assert np.isfinite(res["prediction"]) and set(res["mask_means"]) == {"text", "audio", "visual"}
    assert res["words"] == test_media["text"].split() and res["timing"] == "pocketsphinx"
    # the same features as the dataset's: predicting the extracted valid clip (same media) agrees
    from mmlatch.analysis.predict import load_run, predict_file

    table = predict_file(load_run(run), str(media_dataset["out"]), "valid", None, 64)
    assert table.filter(like="pred").iloc[0, 0] == pytest.approx(res["prediction"], abs=1e-4)
    # a run whose spec differs (another embedding file) is refused
    spec_file = run / "model.json"
    spec = json.loads(spec_file.read_text())
    spec["extraction"]["text"]["identity"] = "glove.840B.300d.txt:size1-sha256:0"
    spec_file.write_text(json.dumps(spec))
    r = _cli("predict", "--run", run, "--media", test_media["face"], "--transcript", test_media["text"])
    assert r.exit_code == 2 and "another extraction spec" in r.output and "text.identity" in r.output
    # a run trained on non-extracted features (synthetic here; CMU features alike) is refused
    syn = tmp_path / "syn"
    r = _cli("train", "--data", "synthetic", "--model", "baseline", "--epochs", "1", "--out", syn, "--no-progress",
             "--set", "data_args.n_train=16", "--set", "data_args.n_valid=8", "--set", "data_args.n_test=8",
             "--set", "model_args.hidden=8")
    assert r.exit_code == 0, r.output
    r = _cli("predict", "--run", syn, "--media", test_media["face"], "--transcript", test_media["text"])
    assert r.exit_code == 2 and "not made by `mmlatch extract`" in r.output


def test_egemaps_and_expressions_extract_train_and_predict_from_media(media_dataset, test_media, tmp_path):
    """``--audio egemaps --visual expressions`` on the test clips, then a run on them predicts
    from media, and refuses the default (librosa/geometry) features naming the extractor."""
    import importlib.util

    for module in ("opensmile", "fer"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    out = tmp_path / "one.npz"
    r = _cli("extract", "--media", test_media["face"], "--transcript", test_media["text"], "--out", out,
             "--audio", "egemaps", "--visual", "expressions", *FAST)
    assert r.exit_code == 0, r.output
    z = np.load(out)
    assert z["audio"].shape == (1, 6, 25) and z["visual"].shape == (1, 6, 8)
    probs = z["visual"][0, :, 1:]  # the still face is found in every word's frames
    assert (z["visual"][0, :, 0] == 1).all() and np.allclose(probs.sum(-1), 1, atol=1e-4)
    spec = json.loads(out.with_name("one.manifest.json").read_text())["spec"]
    assert spec["audio"]["extractor"] == "egemaps" and spec["visual"]["sha256"].startswith("59534287")
    ds_out = tmp_path / "clips.npz"
    r = _cli("extract", "--manifest", media_dataset["csv"], "--out", ds_out, "--no-progress", "--audio", "egemaps",
             "--visual", "expressions", *FAST)
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    r = _cli("train", "--data", ds_out, "--model", "baseline", "--epochs", "1", "--out", run, "--no-progress",
             "--set", "model_args.hidden=8")
    assert r.exit_code == 0, r.output
    r = _cli("predict", "--run", run, "--media", test_media["face"], "--transcript", test_media["text"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output[r.output.index("{"):])
    assert np.isfinite(res["prediction"]) and res["words"] == test_media["text"].split()
    r = _cli("predict", "--run", run, "--data", media_dataset["out"])
    assert r.exit_code == 2 and "audio features of egemaps v1" in r.output and "not librosa v1" in r.output, r.output
