"""Faults of the machine (issue 25): two writers on one run directory, full disks (a file-size
limit: writes fail with EFBIG the way a full disk fails them with ENOSPC), flipped bits.

Writers run as subprocesses. A small harness (``_HARNESS``) runs the CLI with
``RLIMIT_FSIZE`` lowered at a chosen moment (at start, by ``preexec_fn``; or when epoch 2
starts, when fitting ended, before the metrics are written) and SIGXFSZ ignored, so the write
that crosses the limit fails with EFBIG instead of killing the process.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmlatch
from mmlatch.cli.main import app
from mmlatch.files import WriteError, write_text
from mmlatch.rundir import LockedError, lock_files, writer_lock
from mmlatch.training.run import RunError
from tiny import tiny_settings

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = tiny_settings()
runner = CliRunner()

_HARNESS = """
import os, resource, signal, sys, time
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a kill
point, limit = "", 0

def set_limit(value):
    resource.setrlimit(resource.RLIMIT_FSIZE, (value, resource.RLIM_INFINITY))

from mmlatch.training import module, run
epoch_start = module.TaskModule.on_train_epoch_start

def on_epoch_start(self):
    if point == "epoch2" and self.current_epoch == 1:
        set_limit(limit)
    if point == "slow":
        time.sleep(0.4)
    epoch_start(self)

module.TaskModule.on_train_epoch_start = on_epoch_start
fit, evaluate_model = run._fit, run.evaluate_model

def fit_then_limit(*args, **kwargs):
    fit(*args, **kwargs)
    if point == "weights":
        set_limit(limit)

def limit_then_evaluate(*args, **kwargs):
    if point == "metrics":
        set_limit(limit)
    return evaluate_model(*args, **kwargs)

run._fit, run.evaluate_model = fit_then_limit, limit_then_evaluate
from mmlatch.cli.main import app
# argv: POINT:LIMIT ... -- ARGS, where ARGS' "{point}" names each scenario's own directory
cut = sys.argv.index("--")
for item in sys.argv[1:cut]:
    point, limit = item.split(":")[0], int(item.split(":")[1])
    # "start": the limit was set before Python started (preexec_fn); it holds from the first write
    try:
        app([a.replace("{point}", point) for a in sys.argv[cut + 1:]])
    except SystemExit as exc:
        code = exc.code
    set_limit(resource.RLIM_INFINITY)
    print(f"@@ {point} exit {code}", file=sys.stderr, flush=True)
"""


def _args(out: Path | str, seed: int = 0, epochs: int = 3) -> list[str]:
    sets = [a for item in TINY for a in ("--set", item)]
    return ["train", "--data", "synthetic", "--model", "mmlatch", "--epochs", str(epochs), "--seed", str(seed),
            "--out", str(out), *sets]


def _start(scenarios: list[str], args: list[str]) -> subprocess.Popen:
    """The harness in a subprocess: each ``point:limit`` scenario runs ``args`` once; a first
    ``start:LIMIT`` scenario gets its file-size limit in the child before Python starts."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    first = scenarios[0].split(":") if scenarios else ["", "0"]

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if first[0] == "start":
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(first[1]), resource.RLIM_INFINITY))

    return subprocess.Popen([sys.executable, "-c", _HARNESS, *scenarios, "--", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec)


def _error_line(stderr: str) -> str:
    """The one error line of a failed command (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "undisturbed"
    res = runner.invoke(app, _args(out))
    assert res.exit_code == 0, res.output
    return out


# ------------------------------------------------------------------- 1. one writer


def test_two_trainings_on_one_directory_one_proceeds(undisturbed: Path, tmp_path: Path) -> None:
    out = tmp_path / "same"
    first = _start(["slow:0"], _args(out, seed=0))
    holder = lock_files(out)[1]
    deadline = time.time() + 120
    while not holder.is_file():
        assert first.poll() is None and time.time() < deadline, first.communicate()
        time.sleep(0.05)
    second = runner.invoke(app, _args(out, seed=2))  # while the first trains
    line = second.output.strip()
    assert second.exit_code == 2 and line.count("\n") == 0, second.output
    assert line.startswith(f"error: {out} is being written by pid {first.pid} on host ")
    assert " since " in line and "use another --out" in line
    _, err = first.communicate(timeout=240)
    assert first.returncode == 0 and "@@ slow exit 0" in err, err
    # the directory holds the first run only: its config, its metrics (seed 0, as undisturbed)
    assert (out / "metrics.json").read_text() == (undisturbed / "metrics.json").read_text()
    assert "seed: 0" in (out / "config.yaml").read_text()
    res = runner.invoke(app, ["verify", "--run", str(out)])
    assert res.exit_code == 0 and "no problems found" in res.output, res.output


def test_a_killed_writer_leaves_a_lock_the_next_one_takes_over(undisturbed: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    killed = subprocess.Popen(  # takes the lock, then dies without releasing it
        [sys.executable, "-c", "import os, signal, sys; from mmlatch.rundir import writer_lock\n"
         "with writer_lock(sys.argv[1]):\n    os.kill(os.getpid(), signal.SIGKILL)", str(out)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert killed.wait(timeout=60) == -signal.SIGKILL
    assert json.loads(lock_files(out)[1].read_text())["pid"] == killed.pid  # its name is still there
    res = runner.invoke(app, _args(out))
    assert res.exit_code == 0, res.output
    assert (out / "metrics.json").read_text() == (undisturbed / "metrics.json").read_text()
    assert not lock_files(out)[1].exists()


def test_the_lock_names_a_holder_that_ended_and_removes_a_directory_it_made(tmp_path: Path) -> None:
    out = tmp_path / "d"
    with writer_lock(out):
        lock_files(out)[1].write_text(json.dumps({"pid": 2**22 + 7, "host": os.uname().nodename, "since": "then"}))
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from mmlatch.rundir import writer_lock\n"
             "with writer_lock(sys.argv[1]): pass", str(out)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=60,
        )
        assert child.returncode != 0 and "LockedError" in child.stderr
        assert "that process has ended, but a process it started still holds the lock" in child.stderr
        with writer_lock(out):  # the same thread may take it again
            pass
    with pytest.raises(ValueError), writer_lock(tmp_path / "new" / "run"):
        raise ValueError("bad input: nothing written")
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------- 2. full disks


SCENARIOS = {  # point: (file-size limit, what the error line names)
    "start": (1_000_000, "checkpoint: "),  # from the start: the first checkpoint (~10 MB) fails
    "epoch2": (1_000_000, "checkpoint: "),  # from epoch 2 on: a later checkpoint
    "weights": (1_000_000, "the best weights: "),  # after fitting: model.safetensors (~3 MB)
    "metrics": (300, "the metrics: "),  # metrics.json (~1 kB; timing.json before it: 55 bytes)
}


def test_a_failed_write_is_one_line_and_a_rerun_ends_as_undisturbed(undisturbed: Path, tmp_path: Path) -> None:
    from mmlatch.training.run import read_checkpoint

    proc = _start([f"{p}:{limit}" for p, (limit, _) in SCENARIOS.items()], _args(tmp_path / "{point}"))
    _, err = proc.communicate(timeout=400)
    blocks = err.split("@@ ")
    assert len(blocks) == len(SCENARIOS) + 1, err
    for block, (point, (_, names)) in zip(blocks[:-1], SCENARIOS.items()):
        if point != "start":
            block = block.split("\n", 1)[1]  # the previous scenario's marker line
        out = tmp_path / point
        assert f"{point} exit 2" in err, err
        line = _error_line(block)
        assert "could not write " in line and names in line and "File too large (EFBIG)" in line, line
        assert str(out) in line and "re-run the same command to resume" in line, line
        assert not list(out.rglob(".*.tmp")), "a temporary file was left"
        assert not (out / "metrics.json").exists()
        if point != "start":  # a complete earlier checkpoint, matching its recorded hash
            assert read_checkpoint(out / "checkpoints" / "last.ckpt")["epoch"] >= 0
        if point in ("weights", "metrics"):
            assert "to resume (checkpoints/last.ckpt holds epoch 3)" in line, line
        res = runner.invoke(app, _args(out))  # space freed: the same command
        assert res.exit_code == 0, (point, res.output)
        assert (out / "metrics.json").read_text() == (undisturbed / "metrics.json").read_text(), point
        assert (out / "model.safetensors").read_bytes() == (undisturbed / "model.safetensors").read_bytes()


def test_atomic_write_failures_leave_the_old_file(tmp_path: Path) -> None:
    write_text(tmp_path / "a.txt", "old")
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if os.access(tmp_path / "ro", os.W_OK):
            pytest.skip("running as a user that ignores permissions")
        with pytest.raises(WriteError, match=r"could not write .*ro/x.json: Permission denied \(EACCES\)"):
            write_text(tmp_path / "ro" / "x.json", "{}")
    finally:
        os.chmod(tmp_path / "ro", 0o700)


def test_permission_denied_run_directory_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if os.access(tmp_path / "ro", os.W_OK):
            pytest.skip("running as a user that ignores permissions")
        res = runner.invoke(app, _args(tmp_path / "ro" / "r", epochs=1))
    finally:
        os.chmod(tmp_path / "ro", 0o700)
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "Permission denied" in res.output and str(tmp_path / "ro" / "r") in res.output


# ------------------------------------------------------------------- 3. flipped bits


def _flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_bit_in_the_weights_is_refused_on_every_load(undisturbed: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(undisturbed, run)
    _flip(run / "model.safetensors", 0.7)  # inside the tensor bytes: safetensors itself loads it
    needle = f"{run / 'model.safetensors'}: SHA-256 differs"
    for args in (["evaluate", "--run", str(run)], ["predict", "--run", str(run), "--data", "synthetic"],
                 ["export", "--run", str(run), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and res.output.startswith(f"error: {needle}"), (args, res.output)
        assert res.output.count("\n") == 1, res.output
    with pytest.raises(RunError, match="SHA-256 differs"):
        mmlatch.load_run(run)
    from mmlatch.analysis.collect import load_run_data

    with pytest.raises(RunError, match="SHA-256 differs"):
        load_run_data(run)
    res = runner.invoke(app, ["verify", "--run", str(run)])
    assert res.exit_code == 1 and f"PROBLEM  {needle}" in res.output and "1 problem(s)" in res.output, res.output


def test_a_flipped_bit_in_a_checkpoint_is_refused_on_resume(undisturbed: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(undisturbed, run)
    (run / "metrics.json").unlink()  # unfinished: the next train resumes from last.ckpt
    best = run / "checkpoints" / "best.ckpt"
    shutil.copy(best, run / "checkpoints" / "last.ckpt")
    record = json.loads((run / "checkpoints" / "checksums.json").read_text())
    record["last.ckpt"] = record["best.ckpt"]
    (run / "checkpoints" / "checksums.json").write_text(json.dumps(record))
    _flip(run / "checkpoints" / "last.ckpt", 0.6)
    res = runner.invoke(app, _args(run))
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert f"{run / 'checkpoints' / 'last.ckpt'}: SHA-256 differs" in res.output and "--no-resume" in res.output
    _flip(best, 0.6)
    res = runner.invoke(app, ["verify", "--run", str(run)])
    assert res.exit_code == 1, res.output
    assert "PROBLEM  " + str(best) + ": SHA-256 differs" in res.output
    assert "missing metrics.json: an unfinished run" in res.output


def test_verify_names_files_from_different_runs_and_old_runs_load(undisturbed: Path, tmp_path: Path) -> None:
    run = tmp_path / "mixed"
    shutil.copytree(undisturbed, run)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "seed": 1}))  # another seed's metrics
    res = runner.invoke(app, ["verify", "--run", str(run)])
    assert res.exit_code == 1, res.output
    assert "metrics.json: seed is 1 but config.yaml: seed is 0: the files come from different runs" in res.output
    # a run written before hashes were stored: loads, and verify says so
    old = tmp_path / "old"
    shutil.copytree(undisturbed, old)
    spec = json.loads((old / "model.json").read_text())
    del spec["weights_sha256"]
    (old / "model.json").write_text(json.dumps(spec))
    (old / "checkpoints" / "checksums.json").unlink()
    assert runner.invoke(app, ["evaluate", "--run", str(old)]).exit_code == 0
    res = runner.invoke(app, ["verify", "--run", str(old)])
    assert res.exit_code == 0 and "model.safetensors: no stored hash" in res.output, res.output
    assert "checkpoints/best.ckpt: no stored hash" in res.output
    (old / ".metrics.json.abc.tmp").write_text("{")
    res = runner.invoke(app, ["verify", "--run", str(old)])
    assert res.exit_code == 0 and "temporary file of a write that never finished" in res.output


def test_a_flipped_bit_in_an_extracted_dataset_is_refused(tmp_path: Path) -> None:
    from mmlatch.data import load_dataset
    from mmlatch.data.convert import save_dataset
    from mmlatch.data.synthetic import make_synthetic
    from mmlatch.files import sha256_file, write_json

    npz = save_dataset(make_synthetic(n_train=8, n_valid=4, n_test=4, min_len=3, max_len=6), tmp_path / "x.npz")
    manifest = tmp_path / "x.manifest.json"
    write_json(manifest, {"format": "mmlatch-extract-manifest", "dataset": str(npz), "dataset_sha256": sha256_file(npz)})
    load_dataset(str(npz))
    assert runner.invoke(app, ["verify", "--data", str(npz)]).exit_code == 0
    _flip(npz, 0.5)
    for args in (["data", "inspect", str(npz)], ["train", "--data", str(npz), "--out", str(tmp_path / "r")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
        assert f"error: {npz}: SHA-256 differs from the one x.manifest.json recorded" in res.output
    res = runner.invoke(app, ["verify", "--data", str(npz)])
    assert res.exit_code == 1 and "SHA-256 differs" in res.output
    assert not (tmp_path / "r").exists()


def test_a_second_experiment_on_one_directory_is_refused(tmp_path: Path) -> None:
    import threading

    from mmlatch.training.experiment import load_experiment, run_experiment

    exp_file = tmp_path / "exp.yaml"
    exp_file.write_text("name: t\ndata: synthetic\nseeds: 1\nruns:\n  - {name: b, model: baseline}\n")
    exp = load_experiment(exp_file, epochs=1)
    out = tmp_path / "exp"
    caught: list[BaseException] = []

    def second() -> None:  # another writer: a thread of its own takes its own lock
        try:
            run_experiment(exp, out, log=lambda _: None)
        except BaseException as exc:  # noqa: BLE001 - looked at below
            caught.append(exc)

    with writer_lock(out):
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=120)
    assert len(caught) == 1 and isinstance(caught[0], LockedError), caught
    assert str(caught[0]).startswith(f"{out} is being written by pid {os.getpid()} on host ")
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing of the experiment written
