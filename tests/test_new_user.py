"""What a new user meets: readable files, one-line errors, quick errors, messages while
training, run directories that work from anywhere, explicit padding (issue 14)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mmlatch
from mmlatch.cli.main import app
from mmlatch.data import Split, TaskSpec
from mmlatch.data.convert import save_dataset
from mmlatch.data.synthetic import make_synthetic
from mmlatch.files import atomic_write, write_bytes, write_json, write_text
from mmlatch.training.run import RunError
from tiny import tiny_settings

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = tiny_settings()
EPOCHS = 3
runner = CliRunner()


def _sets(items: list[str]) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def _train_args(out: Path, data: str = "synthetic", extra: list[str] = ()) -> list[str]:
    return ["train", "--data", data, "--model", "mmlatch", "--epochs", str(EPOCHS), "--out", str(out),
            *_sets([*TINY, *extra])]


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished tiny run, written under umask 022."""
    out = tmp_path_factory.mktemp("newuser") / "r"
    old = os.umask(0o022)
    try:
        res = runner.invoke(app, _train_args(out))
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    return out


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------- 1. files follow the umask


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        files = [write_text(tmp_path / "a.txt", "x"), write_bytes(tmp_path / "b.bin", b"x"),
                 write_json(tmp_path / "c.json", {"v": float("nan")})]
        with atomic_write(tmp_path / "d.bin", "wb") as fh:
            fh.write(b"y")
        files.append(tmp_path / "d.bin")
    finally:
        os.umask(old)
    assert [_mode(f) for f in files] == [0o666 & ~mask] * 4
    assert json.loads((tmp_path / "c.json").read_text()) == {"v": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "c.json", "d.bin"]  # no temp files


def test_a_failed_atomic_write_leaves_the_old_file(tmp_path: Path) -> None:
    write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_write(tmp_path / "a.txt") as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert (tmp_path / "a.txt").read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_every_file_of_a_run_and_a_conversion_is_readable_by_others(run_dir: Path, tmp_path: Path, umask022) -> None:
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {"metrics.json", "model.json", "model.safetensors", "timing.json", "environment.json"} <= {p.name for p in files}
    assert {str(p.relative_to(run_dir)): oct(_mode(p)) for p in files} == {
        str(p.relative_to(run_dir)): oct(0o644) for p in files
    }
    npz = save_dataset(make_synthetic(n_train=4, n_valid=2, n_test=2, min_len=3, max_len=5), tmp_path / "d.npz")
    assert _mode(npz) == 0o644
    res = runner.invoke(app, ["predict", "--run", str(run_dir), "--data", str(npz), "--out", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    assert _mode(tmp_path / "p.csv") == 0o644


# ------------------------------------------------------------------- 2. corrupt run files


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(run_dir, target)
    return target


def _one_line_error(res, *needles: str) -> str:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in res.output
    return lines[0]


def test_truncated_safetensors_is_one_line_naming_the_file(run_dir: Path, tmp_path: Path) -> None:
    run = _copy(run_dir, tmp_path)
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for args in (["evaluate", "--run", str(run)], ["predict", "--run", str(run), "--data", "synthetic"]):
        _one_line_error(runner.invoke(app, args), str(weights), "truncated or corrupt")
    with pytest.raises(RunError, match="model.safetensors: not a readable safetensors file"):
        mmlatch.load_run(run)


def test_broken_model_json_and_config_yaml_are_one_line_naming_the_file(run_dir: Path, tmp_path: Path) -> None:
    run = _copy(run_dir, tmp_path)
    good = (run / "model.json").read_text()
    (run / "model.json").write_text("{broken")
    _one_line_error(runner.invoke(app, ["evaluate", "--run", str(run)]), str(run / "model.json"), "not valid JSON")
    (run / "model.json").write_text(good)
    (run / "config.yaml").write_text("model: [mmlatch\nseed: 0\n")
    _one_line_error(runner.invoke(app, ["evaluate", "--run", str(run)]), "config.yaml", "not valid YAML")


def test_truncated_checkpoint_is_one_line_naming_the_file(run_dir: Path, tmp_path: Path) -> None:
    run = _copy(run_dir, tmp_path)
    (run / "metrics.json").unlink()  # an unfinished run: re-running resumes from last.ckpt
    best = (run / "checkpoints" / "best.ckpt").read_bytes()
    (run / "checkpoints" / "last.ckpt").write_bytes(best[: len(best) // 3])
    line = _one_line_error(runner.invoke(app, _train_args(run)), str(run / "checkpoints" / "last.ckpt"),
                           "not a readable checkpoint")
    assert "--no-resume" in line


# ------------------------------------------------------------------- 2b. fuzzing: damaged inputs


def _damaged(raw: bytes, flips: int, seed: int) -> list[tuple[str, bytes]]:
    """Truncations (empty, 10%, 50%, 90%) and single flipped bits at random places."""
    import random

    rng = random.Random(seed)
    out = [(f"truncated to {f:.0%}", raw[: int(len(raw) * f)]) for f in (0.0, 0.1, 0.5, 0.9)]
    for _ in range(flips):
        pos = rng.randrange(len(raw))
        data = bytearray(raw)
        data[pos] ^= 1 << rng.randrange(8)
        out.append((f"bit flipped at byte {pos}", bytes(data)))
    return out


def _answered(args: list[str], where: str, case: str) -> None:
    """Either it reads (exit 0), or one error line naming ``where`` (exit 2), never a traceback."""
    res = runner.invoke(app, args)
    if res.exit_code == 0:
        return
    lines = [line for line in res.output.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (case, res.output)
    assert where in lines[0], (case, where, lines[0])
    assert "Traceback" not in res.output


def _csd(path: Path, root: str, entries: dict) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        data = f.create_group(root).create_group("data")
        for vid, (feats, iv) in entries.items():
            g = data.create_group(vid)
            g.create_dataset("features", data=feats)
            g.create_dataset("intervals", data=iv)


def _csd_corpus(root: Path) -> list[str]:
    """Three videos (one per split): words, COVAREP audio and labels; returns inspect's args."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    words_iv = np.array([[k, k + 1.0] for k in range(4)])
    frames_iv = np.array([[k / 10, (k + 1) / 10] for k in range(40)])
    vids = ("v1", "v2", "v3")
    _csd(root / "CMU_MOSI_TimestampedWords.csd", "words",
         {v: (np.array([[t.encode()] for t in ("good", "movie", "not", "bad")]), words_iv) for v in vids})
    _csd(root / "CMU_MOSI_COVAREP.csd", "COVAREP", {v: (rng.normal(size=(40, 3)), frames_iv) for v in vids})
    _csd(root / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels",
         {v: (np.array([[0.5 * i - 0.5]]), np.array([[0.0, 4.0]])) for i, v in enumerate(vids)})
    (root / "folds.json").write_text(json.dumps({"train": ["v1"], "valid": ["v2"], "test": ["v3"]}))
    return ["data", "inspect", str(root), "--folds", str(root / "folds.json")]


def _mfn(root: Path) -> list[str]:
    import h5py

    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split in ("train", "valid", "test"):
        for name, dim in (("audio", 3), ("video", 2)):
            with h5py.File(root / f"{name}_{split}.h5", "w") as f:
                f.create_dataset("d1", data=rng.normal(size=(3, 5, dim)))
        with h5py.File(root / f"y_{split}.h5", "w") as f:
            f.create_dataset("d1", data=np.array([1.0, -2.0, 0.5]))
    return ["data", "inspect", str(root)]


def test_damaged_csd_and_mfn_files_are_answered_in_one_line(tmp_path: Path) -> None:
    import h5py

    csd_args, mfn_args = _csd_corpus(tmp_path / "csd"), _mfn(tmp_path / "mfn")
    assert runner.invoke(app, csd_args).exit_code == 0 and runner.invoke(app, mfn_args).exit_code == 0
    targets = [(tmp_path / "csd" / n, csd_args) for n in
               ("CMU_MOSI_COVAREP.csd", "CMU_MOSI_Opinion_Labels.csd", "CMU_MOSI_TimestampedWords.csd")]
    targets += [(tmp_path / "mfn" / n, mfn_args) for n in ("audio_valid.h5", "y_test.h5")]
    for i, (path, args) in enumerate(targets):
        raw = path.read_bytes()
        for case, data in [*_damaged(raw, 12, seed=i), ("a text file", b"not hdf5 at all\n")]:
            path.write_bytes(data)
            where = str(path) if case.startswith(("truncated", "a text")) else str(path.parent)
            _answered(args, where, f"{path.name}: {case}")
        path.write_bytes(raw)
    # wrong types inside well-formed files
    covarep = tmp_path / "csd" / "CMU_MOSI_COVAREP.csd"
    with h5py.File(covarep, "a") as f:
        del f["COVAREP/data/v2/features"]
        f["COVAREP/data/v2/features"] = np.array([b"x"] * 40)
    _answered(csd_args, str(covarep), "strings as audio features")
    with h5py.File(covarep, "a") as f:
        del f["COVAREP/data/v2"]
        f["COVAREP/data/v2"] = np.zeros(3)
    _answered(csd_args, str(covarep), "a data set where a video group belongs")
    for data, case in ((np.array([b"a", b"b", b"c"]), "string labels"), (np.zeros((3, 2, 2)), "3-d labels"),
                       (np.array([1.0, -2.0, 0.5]), "")):
        with h5py.File(tmp_path / "mfn" / "y_test.h5", "w") as f:
            f.create_dataset("d1", data=data)
        if case:
            _answered(mfn_args, "y_test.h5", case)
    with h5py.File(tmp_path / "mfn" / "audio_test.h5", "w") as f:
        f.create_group("d1")
    _answered(mfn_args, "audio_test.h5", "a group where the data set belongs")


def test_damaged_datasets_and_extraction_manifests_are_answered_in_one_line(tmp_path: Path) -> None:
    from mmlatch.files import sha256_file

    npz = save_dataset(make_synthetic(n_train=6, n_valid=3, n_test=3, min_len=2, max_len=4), tmp_path / "x.npz")
    raw = npz.read_bytes()
    args = ["data", "inspect", str(npz)]
    for case, data in _damaged(raw, 12, seed=7):  # no manifest: the zip members' CRC-32 catch flips
        npz.write_bytes(data)
        _answered(args, str(npz), f"npz {case}")
        assert runner.invoke(app, args).exit_code == 2, case  # every flip lands in a checked byte here
    npz.write_bytes(raw)
    arrays = dict(np.load(npz, allow_pickle=False))
    for key, value in (("train/text/features", np.array(["a", "b"])), ("train/labels", np.array("x")),
                       ("__mmlatch__", np.array([1, 2])), ("train/ids", np.zeros((2, 2)))):
        np.savez(tmp_path / "typed.npz", **{**arrays, key: value})
        _answered(["data", "inspect", str(tmp_path / "typed.npz")], str(tmp_path / "typed.npz"), f"wrong-typed {key}")
    manifest = tmp_path / "x.manifest.json"
    doc = {"format": "mmlatch-extract-manifest", "dataset": str(npz), "dataset_sha256": sha256_file(npz),
           "spec": {"modalities": ["text", "audio", "visual"]}, "clips": []}
    good = json.dumps(doc, indent=1).encode()
    cases = [*_damaged(good, 16, seed=8), ("a list", b"[]"), ("a number as hash", json.dumps({**doc, "dataset_sha256": 5}).encode())]
    for case, data in cases:
        manifest.write_bytes(data)
        _answered(args, str(tmp_path / "x."), f"manifest {case}")  # names x.npz or x.manifest.json
    manifest.write_bytes(good)
    assert runner.invoke(app, args).exit_code == 0


def test_damaged_yaml_configs_are_answered_in_one_line(tmp_path: Path, monkeypatch) -> None:
    import mmlatch.training

    monkeypatch.setattr(mmlatch.training, "train", lambda *a, **k: {"stub": True})  # a config that reads: no training
    text = "model: mmlatch\ndata: synthetic\nepochs: 2\nseed: 3\nmodel_args:\n  hidden: 8\ndata_args:\n  n_train: 32\nbatch_size: 16\nlr: 0.001\n"
    cfg = tmp_path / "c.yaml"
    args = ["train", "--config", str(cfg), "--out", str(tmp_path / "r")]
    typed = [("a list", "- a\n- b\n"), ("epochs: ten", text.replace("epochs: 2", "epochs: ten")),
             ("model_args a list", text.replace("model_args:\n  hidden: 8", "model_args: [1, 2]")),
             ("lr a list", text.replace("lr: 0.001", "lr: [1]")), ("seed 3.5", text.replace("seed: 3", "seed: 3.5")),
             ("data a number", text.replace("data: synthetic", "data: 5")), ("binary", "\x00\x01\xff\xfe"),
             ("a tab", "model:\tmmlatch\n")]
    for case, data in [*_damaged(text.encode(), 24, seed=9), *((c, t.encode("latin-1")) for c, t in typed)]:
        cfg.write_bytes(data)
        _answered(args, str(cfg), f"config {case}")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------- 3. errors without Lightning

_PROBE = """
import json, sys
from typer.testing import CliRunner
from mmlatch.cli.main import app
res = CliRunner().invoke(app, sys.argv[1:])
print(json.dumps({"code": res.exit_code, "output": res.output,
                  "lightning": "lightning" in sys.modules, "torch": "torch" in sys.modules}))
"""


def _probe(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bad_input_is_answered_without_importing_lightning(run_dir: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle at all")
    cases = [
        (["data", "inspect", "/nonexistent"], "/nonexistent: no such file or directory", False),
        (["evaluate", "--run", "/nonexistent"], "/nonexistent", False),
        (["train", "--data", "/nonexistent"], "/nonexistent: no such file or directory", False),
        (["predict", "--run", str(run_dir), "--data", "/nonexistent"], "/nonexistent", False),
        (["data", "inspect", str(garbage)], str(garbage), None),
        (["train", "--data", str(garbage), "--out", str(tmp_path / "never")], str(garbage), None),
        (["train", "--set", "no_such_key=1", "--out", str(tmp_path / "never")], "no_such_key", None),
    ]
    for args, needle, torch_loaded in cases:
        got = _probe(*args)
        assert got["code"] == 2 and needle in got["output"], (args, got)
        assert not got["lightning"], f"{args} imported Lightning"
        if torch_loaded is False:
            assert not got["torch"], f"{args} imported torch"
    assert not (tmp_path / "never").exists()  # a failed command leaves no run directory


# ------------------------------------------------------------------- 4. messages while training


def test_interrupt_resume_and_finished_messages(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from mmlatch.training.module import TaskModule

    out = tmp_path / "r"
    original = TaskModule.on_train_epoch_start

    def interrupt_second_epoch(self) -> None:
        if self.current_epoch == 1:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
        original(self)

    monkeypatch.setattr(TaskModule, "on_train_epoch_start", interrupt_second_epoch)
    handler = signal.getsignal(signal.SIGINT)
    res = runner.invoke(app, _train_args(out))
    assert res.exit_code == 130, res.output
    assert "epoch 1/3: train_loss" in res.output  # per-epoch lines: the output is no terminal
    assert "interrupted at epoch 2; re-run the same command to resume" in res.output
    assert (out / "checkpoints" / "last.ckpt").is_file() and not (out / "metrics.json").exists()
    monkeypatch.setattr(TaskModule, "on_train_epoch_start", original)
    assert signal.getsignal(signal.SIGINT) == handler  # Lightning ignores Ctrl-C after one; restored

    res = runner.invoke(app, _train_args(out))
    assert res.exit_code == 0, res.output
    assert f"{out}: resuming from epoch 2" in res.output
    assert "epoch 1/3" not in res.output and "epoch 3/3" in res.output
    # the resumed run ends where the uninterrupted one did, and drops last.ckpt once finished
    assert (out / "metrics.json").read_text() == (run_dir / "metrics.json").read_text()
    assert not (out / "checkpoints" / "last.ckpt").exists()
    assert pd.read_csv(out / "log" / "metrics.csv")["epoch"].tolist() == [1, 2, 3]

    before = (out / "metrics.json").stat().st_mtime_ns
    res = runner.invoke(app, _train_args(out))
    assert res.exit_code == 0 and "already finished: nothing to do" in res.output, res.output
    assert "epoch 1/3" not in res.output and (out / "metrics.json").stat().st_mtime_ns == before


def test_sigint_during_training_names_the_epoch(tmp_path: Path) -> None:
    out = tmp_path / "r"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mmlatch", *_train_args(out, extra=["patience=1000"])]
    cmd[cmd.index("--epochs") + 1] = "1000"
    proc = subprocess.Popen(  # SIGINT at its default (xdist workers ignore it, and children inherit that)
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 240
    seen = []
    try:
        for line in proc.stderr:  # not a terminal: one line per epoch
            seen.append(line)
            if line.startswith("epoch 2/1000"):
                break
            assert time.time() < deadline, seen
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(seen) + err
    assert "re-run the same command to resume" in err and "interrupted at epoch" in err
    assert "Traceback" not in err
    assert (out / "checkpoints" / "last.ckpt").is_file()


# ------------------------------------------------------------------- 5. runs work from anywhere


def test_evaluate_from_another_directory_and_a_moved_dataset(tmp_path: Path, monkeypatch) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir(), elsewhere.mkdir()
    save_dataset(make_synthetic(n_train=32, n_valid=16, n_test=16, max_len=10), work / "data.npz")
    monkeypatch.chdir(work)
    tiny = [t for t in TINY if not t.startswith("data_args")]
    res = runner.invoke(app, ["train", "--data", "data.npz", "--model", "baseline", "--epochs", "1",
                              "--out", "runs/r", *_sets(tiny)])
    assert res.exit_code == 0, res.output
    run = work / "runs" / "r"
    test_block = json.loads((run / "metrics.json").read_text())["test"]
    assert "data: " + str(work / "data.npz") in (run / "config.yaml").read_text()  # stored resolved
    monkeypatch.chdir(elsewhere)
    res = runner.invoke(app, ["evaluate", "--run", str(run)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == test_block
    (work / "data.npz").rename(elsewhere / "moved.npz")
    line = _one_line_error(runner.invoke(app, ["evaluate", "--run", str(run)]), str(work / "data.npz"),
                           "comes from run", "--data")
    assert "no such file or directory" in line
    res = runner.invoke(app, ["evaluate", "--run", str(run), "--data", "moved.npz"])
    assert res.exit_code == 0 and json.loads(res.output) == test_block, res.output
    # the same command from the run's own directory resumes nothing: it is the same run
    monkeypatch.chdir(work)
    (elsewhere / "moved.npz").rename(work / "data.npz")
    res = runner.invoke(app, ["train", "--data", "data.npz", "--model", "baseline", "--epochs", "1",
                              "--out", "runs/r", *_sets(tiny)])
    assert res.exit_code == 0 and "already finished" in res.output, res.output


# ------------------------------------------------------------------- 6. padding is explicit


def test_padding_argument_and_warning(run_dir: Path) -> None:
    run = mmlatch.load_run(run_dir)
    assert not run.model.training  # eval mode
    ds = make_synthetic(n_train=48, n_valid=16, n_test=16, max_len=12)
    split = ds.split("test")
    pick = [i for i in range(len(split)) if split.lengths["text"][i] < 12][:4]
    end = {m: split.features[m][pick] for m in run.modalities}  # end-padded (B, 12, F)
    lengths = split.lengths["text"][pick]
    reference = run.predict(end, lengths=lengths).prediction
    front = {m: np.zeros_like(x) for m, x in end.items()}
    for m, x in end.items():
        for b, n in enumerate(lengths):
            front[m][b, 12 - n:] = x[b, :n]
    np.testing.assert_allclose(run.predict(front, lengths=lengths, padding="front").prediction, reference, atol=1e-6)
    np.testing.assert_allclose(run.predict(front, padding="front").prediction, reference, atol=1e-6)
    np.testing.assert_allclose(run.predict(end, padding="end").prediction, reference, atol=1e-6)
    with pytest.warns(UserWarning, match="all-zero leading .*padding='front'"):
        as_real = run.predict(front).prediction
    assert not np.allclose(as_real, reference)  # the padding read as real steps changes predictions
    with pytest.warns(UserWarning, match="all-zero trailing"):
        run.predict(end)
    full = {m: x[:, :6] for m, x in end.items() if True}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.predict({m: x[0, : lengths[0]] for m, x in end.items()})  # one real sample: no warning
        run.predict(full, lengths=np.full(len(pick), 6))
    with pytest.raises(ValueError, match="padding must be"):
        run.predict(end, padding="middle")


# ------------------------------------------------------------------- 7. smaller items


def test_bad_model_setting_names_the_setting_and_leaves_no_directory(tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = runner.invoke(app, _train_args(out, extra=["model_args.dropout=1.5"]))
    _one_line_error(res, "model_args.dropout=1.5")
    assert not out.exists()


def test_predict_on_data_labelled_for_another_task_ignores_the_labels(run_dir: Path, tmp_path: Path) -> None:
    ds = make_synthetic(n_train=4, n_valid=2, n_test=2, min_len=3, max_len=6)
    classes = TaskSpec("classification", 2, ("negative", "positive"), None)
    splits = {k: Split(s.features, s.lengths, (s.labels > 0).astype(np.float32), s.ids) for k, s in ds.splits.items()}
    path = save_dataset(dataclasses.replace(ds, splits=splits, task=classes), tmp_path / "cls.npz")
    with pytest.warns(UserWarning, match="labels ignored: the data is labelled for classification into 2 classes") as rec:
        res = runner.invoke(app, ["predict", "--run", str(run_dir), "--data", str(path)])
    assert res.exit_code == 0, res.output
    assert "TaskSpec(" not in str(rec[0].message) and "label" not in res.output.splitlines()[0]
    res = runner.invoke(app, ["evaluate", "--run", str(run_dir), "--data", str(path)])
    line = _one_line_error(res, "labelled for another task", "regression of sentiment in [-3, 3]")
    assert "TaskSpec(" not in line


def test_one_seed_tables_show_no_spread_and_no_best_of_note() -> None:
    from mmlatch.training.experiment import summary_table

    one = pd.DataFrame([{"name": "a", "seed": 0, "test_mae": 0.5, "test_corr": 0.25}])
    text = summary_table(one)
    assert "±" not in text and "best" not in text.lower() and "0.500" in text
    two = pd.DataFrame([{"name": "a", "seed": s, "test_mae": v, "test_corr": 0.25} for s, v in [(0, 0.5), (1, 0.7)]])
    text = summary_table(two)
    assert "0.600 ± 0.141" in text and "best of 2" in text and "Best of N" in text


def test_folds_help_keeps_its_words() -> None:
    res = runner.invoke(app, ["data", "inspect", "--help"], terminal_width=200)
    assert "lists of video ids" in res.output


@pytest.mark.shared
def test_dropped_modality_warning_only_when_it_was_asked_for(shared_data: Path) -> None:
    import warnings

    from mmlatch.data import load_dataset

    mmmo = shared_data / "mfn" / "mmmo"
    with pytest.warns(UserWarning, match="dropped: text"):
        load_dataset(str(mmmo))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset(str(mmmo), modalities=["audio", "visual"])
    assert ds.modalities == ("audio", "visual")


# ------------------------------------------------------------------- 8. what a researcher expects


def test_environment_and_tensorboard(run_dir: Path, tmp_path: Path) -> None:
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["packages"]["torch"] and env["packages"]["lightning"] and env["python"]
    assert env["host"] and env["device"] == "cpu" and "git_commit" in env
    pytest.importorskip("tensorboard")  # the test extra installs it
    out = tmp_path / "tb"
    res = runner.invoke(app, [*_train_args(out), "--tensorboard"])
    assert res.exit_code == 0, res.output
    events = list((out / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and all(_mode(e) & 0o044 for e in events)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert [e.step for e in acc.Scalars("val_loss")] == [1, 2, 3]
    # same settings as run_dir apart from logging: the same numbers
    assert (out / "metrics.json").read_text() == (run_dir / "metrics.json").read_text()


def test_epoch_logs_count_from_one_and_old_logs_are_shifted(tmp_path: Path) -> None:
    from mmlatch.analysis.collect import read_epoch_log
    from mmlatch.training.run import write_epoch_log

    write_epoch_log(tmp_path / "new" / "log" / "metrics.csv", [{"train_loss": 1.0}, {"train_loss": 0.5}])
    assert read_epoch_log(tmp_path / "new").index.tolist() == [1, 2]
    (tmp_path / "old" / "log").mkdir(parents=True)
    (tmp_path / "old" / "log" / "metrics.csv").write_text("epoch,train_loss\n0,1.0\n1,0.5\n")  # before: from 0
    assert read_epoch_log(tmp_path / "old").index.tolist() == [1, 2]


@pytest.mark.shared
def test_front_padded_mfn_arrays_predict_as_the_file_does(shared_data: Path, tmp_path: Path) -> None:
    """The issue's case: MMMO's MFN files pad at the front; the API gives the file's prediction
    with padding="front" and warns when given the arrays without lengths."""
    import h5py

    mmmo = shared_data / "mfn" / "mmmo"
    out = tmp_path / "r"
    res = runner.invoke(app, ["train", "--data", str(mmmo), "--modalities", "audio,visual", "--model", "baseline",
                              "--epochs", "1", "--out", str(out), *_sets(["model_args.hidden=8", "threads=1"])])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["predict", "--run", str(out), "--data", str(mmmo), "--split", "test"])
    assert res.exit_code == 0, res.output
    from io import StringIO

    from_file = pd.read_csv(StringIO(res.output))["prediction"].to_numpy()[:3]
    arrays = {}
    for mod, name in (("audio", "audio_test.h5"), ("visual", "video_test.h5")):
        with h5py.File(mmmo / name) as f:
            arrays[mod] = np.asarray(f[next(iter(f.keys()))][:3], dtype=np.float32)
    assert (np.abs(arrays["audio"][:, 0]).sum(axis=1) == 0).any()  # front padding is there
    run = mmlatch.load_run(out)
    np.testing.assert_allclose(run.predict(arrays, padding="front").prediction[:, 0], from_file, rtol=1e-5)
    with pytest.warns(UserWarning, match="all-zero leading"):
        as_real = run.predict(arrays).prediction[:, 0]
    assert not np.allclose(as_real, from_file, rtol=1e-5)
