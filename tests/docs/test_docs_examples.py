"""Every shell and Python example of README.md and docs/ runs, page by page, in order.

A page's runnable blocks (see ``docblocks``) become one bash script (``set -euo pipefail``)
run in a fresh workspace that looks like a checkout: ``configs/`` links to the repository's,
``../shared/data`` to the shared real data, ``benchmarks/`` to the repository's. Later blocks
reuse what earlier ones wrote (one workspace per page). Python blocks run as files from the
same script, in the same directory. ``mmlatch`` and ``python`` on the PATH are clients of the
fork server (``forkserver.py``): the real command line and interpreter, imported once per
test worker.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from docblocks import ROOT, doc_pages, parse, setups
from forkserver import CLIENT

SHARED = ROOT.parent / "shared" / "data"
PAGE_TIMEOUT_S = 600


def _runnable_pages() -> list[Path]:
    return [p for p in doc_pages() if any(b.runs for b in parse(p)[0])]


@pytest.fixture(scope="session")
def docs_bin(tmp_path_factory: pytest.TempPathFactory):
    """A bin/ folder with ``mmlatch`` and ``python`` talking to a running fork server (or, with
    MMLATCH_DOCS_DIRECT=1, the installed console script and this interpreter)."""
    folder = tmp_path_factory.mktemp("docs-bin")
    sock = folder / "server.sock"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    server = None
    forkable = hasattr(os, "fork") and hasattr(socket, "send_fds")  # else: slower, same results
    if os.environ.get("MMLATCH_DOCS_DIRECT") != "1" and forkable:
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("forkserver.py")), str(sock)],
            stdout=subprocess.PIPE, env=env, text=True,
        )
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.strip() == "ready", f"docs fork server did not start: {line!r}"
        for name in ("mmlatch", "python"):
            f = folder / name
            f.write_text(f"#!{sys.executable}\n{CLIENT}")
            f.chmod(f.stat().st_mode | stat.S_IXUSR)
    # else: the venv's own bin/ (on the PATH below) gives the console script and interpreter
    yield folder, sock
    if server is not None:
        server.kill()
        server.wait()


# ----------------------------------------------------------------------------- prepared inputs


def _need_media_tools() -> None:
    import importlib.util

    missing = [m for m in ("librosa", "imageio_ffmpeg", "pocketsphinx", "dlib", "skimage", "soundfile")
               if importlib.util.find_spec(m) is None]
    if shutil.which("espeak-ng") is None:
        missing.append("espeak-ng (apt-get install espeak-ng)")
    if missing:
        msg = f"this page's examples need {', '.join(missing)} (pip install -e '.[extract]')"
        if os.environ.get("MMLATCH_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


def _clip(ws: Path, text: str, name: str) -> Path:
    """An mp4 of espeak-ng saying ``text`` over a still face (scikit-image's astronaut)."""
    import imageio.v3 as iio
    import imageio_ffmpeg
    import skimage.data

    wav, png, out = ws / f".{name}.wav", ws / ".face.png", ws / name
    subprocess.run(["espeak-ng", "-s", "170", "-w", str(wav), text], check=True, capture_output=True)
    if not png.exists():
        iio.imwrite(png, skimage.data.astronaut()[::2, ::2])
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-loop", "1", "-framerate", "2",
         "-i", str(png), "-i", str(wav), "-shortest", "-c:v", "mpeg4", "-q:v", "5", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "48k", str(out)],
        check=True, capture_output=True,
    )
    wav.unlink()
    return out


def setup_media(ws: Path) -> None:
    """clip.mp4 + words.txt (one clip), and label.csv + media/<video_id>/<clip_id>.mp4 (three
    clips: train, valid, test), as the extraction page's examples expect."""
    _need_media_tools()
    text = "it was really good"
    _clip(ws, text, "clip.mp4")
    (ws / "words.txt").write_text(text + "\n")
    rows = [("v1", "1", "i loved this movie", 2.0, "train"), ("v1", "2", "it was so boring", -2.0, "train"),
            ("v2", "1", "not bad at all", 1.0, "valid"), ("v3", "1", "really awful acting", -1.5, "test")]
    lines = ["video_id,clip_id,text,label,mode"]
    for vid, cid, words, label, mode in rows:
        (ws / "media" / vid).mkdir(parents=True, exist_ok=True)
        _clip(ws / "media" / vid, words, f"{cid}.mp4")
        lines.append(f"{vid},{cid},{words},{label},{mode}")
    (ws / "label.csv").write_text("\n".join(lines) + "\n")


def setup_shared(ws: Path) -> None:
    """../shared/data must be there (skips elsewhere; CI requires it)."""
    if not SHARED.is_dir():
        if os.environ.get("MMLATCH_REQUIRE_SHARED") == "1":
            pytest.fail(f"MMLATCH_REQUIRE_SHARED=1 but {SHARED} does not exist")
        pytest.skip(f"shared data not found at {SHARED}")


SETUPS = {"media": setup_media, "shared": setup_shared}


# ----------------------------------------------------------------------------- the test


def page_script(page: Path, folder: Path) -> str:
    """The bash script of ``page``'s runnable blocks (python blocks written beside it)."""
    parts = ["set -euo pipefail", "trap 'echo \"docs example failed at script line $LINENO\" >&2' ERR"]
    for k, b in enumerate(parse(page)[0]):
        if not b.runs:
            continue
        parts.append(f"echo '>>> example {b.where}' >&2")
        if b.runs == "bash":
            parts.append(b.code)
        else:
            f = folder / f".example{k}.py"
            f.write_text(b.code)
            parts.append(f"python {f}")
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("page", _runnable_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page: Path, docs_bin, tmp_path: Path) -> None:
    folder, sock = docs_bin
    ws = tmp_path / "project"  # the workspace stands for a checkout; ../shared beside it
    ws.mkdir()
    for name in ("configs", "benchmarks"):
        (ws / name).symlink_to(ROOT / name)
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED.parent)
    text = page.read_text(encoding="utf-8")
    wanted = setups(page) + (["shared"] if "../shared/data" in text else [])
    for name in wanted:
        assert name in SETUPS, f"{page.name}: unknown docs-setup {name!r} (known: {sorted(SETUPS)})"
        SETUPS[name](ws)
    script = ws / ".examples.sh"
    script.write_text(page_script(page, ws))
    path = os.pathsep.join([str(folder), str(Path(sys.executable).parent), os.environ["PATH"]])
    env = dict(os.environ, PATH=path, MMLATCH_DOCS_SERVER=str(sock),
               OMP_NUM_THREADS="1", MMLATCH_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run(["bash", str(script)], cwd=ws, env=env, capture_output=True, text=True,
                          timeout=PAGE_TIMEOUT_S)
    if proc.returncode != 0:
        log = (proc.stdout[-3000:] + "\n--- stderr ---\n" + proc.stderr[-6000:])
        last = [ln for ln in proc.stderr.splitlines() if ln.startswith(">>> example ")]
        where = last[-1][len(">>> example "):] if last else "?"
        pytest.fail(f"example at {where} failed (exit {proc.returncode}):\n{log}")


def test_not_run_blocks_give_a_reason() -> None:
    """A runnable-looking block may be skipped only with ``<!-- not-run: reason -->``; the
    count is printed so a growing number is visible."""
    skipped, missing = [], []
    for page in doc_pages():
        for b in parse(page)[0]:
            if b.not_run is not None and b.lang in ("bash", "sh", "shell", "python", "py"):
                (skipped if len(b.not_run) >= 10 else missing).append(f"{b.where}: {b.not_run!r}")
    assert not missing, "not-run blocks need a reason (10+ characters):\n" + "\n".join(missing)
    print(f"\n{len(skipped)} example blocks not run:\n" + "\n".join(skipped))
    runnable = sum(1 for p in doc_pages() for b in parse(p)[0] if b.runs)
    assert runnable > 3 * len(skipped), (runnable, len(skipped))


def test_every_shell_block_is_tagged() -> None:
    """An untagged fence hides its commands from the runner: tag it (bash/python run; text,
    yaml, ... do not)."""
    untagged = [b.where for p in doc_pages() for b in parse(p)[0] if not b.lang]
    assert not untagged, "code blocks without a language tag: " + ", ".join(untagged)
