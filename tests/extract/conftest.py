"""Test media made on the machine: espeak-ng speech with known word boundaries, muxed with a
face (scikit-image's astronaut photo) or a face-free test pattern into small mp4 files.

Word boundaries are known because every word is synthesised on its own, trimmed to where it
is audible (35 dB below its peak, 4 ms steps) and the words are concatenated without gaps.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

LEAD_S = 0.3
SAMPLE_RATE = 16000


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesise(words: list[str], folder: Path) -> tuple[Path, np.ndarray]:
    """A 16 kHz wav of ``words`` and their true (n, 2) [start, end] seconds."""
    import librosa
    import soundfile as sf

    parts, bounds, t = [], [], LEAD_S
    for i, w in enumerate(words):
        tmp = folder / f".w{i}.wav"
        subprocess.run(["espeak-ng", "-s", "160", "-w", str(tmp), w], check=True, capture_output=True)
        x, sr = sf.read(tmp, dtype="float32")
        x = librosa.resample(x, orig_sr=sr, target_sr=SAMPLE_RATE)
        x, _ = librosa.effects.trim(x, top_db=35, frame_length=256, hop_length=64)
        parts.append(x)
        bounds.append((t, t + len(x) / SAMPLE_RATE))
        t += len(x) / SAMPLE_RATE
        tmp.unlink()
    audio = np.concatenate([np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32), *parts,
                            np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32)])
    path = folder / "speech.wav"
    sf.write(path, audio, SAMPLE_RATE)
    return path, np.array(bounds)


def mux(wav: Path, out: Path, picture: str) -> Path:
    """An mp4 of ``wav`` with a still ``face`` (astronaut) or a moving ``pattern`` (no face)."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    if picture == "face":
        import imageio.v3 as iio
        import skimage.data

        png = out.with_suffix(".png")
        iio.imwrite(png, skimage.data.astronaut()[::2, ::2])  # 256 x 256: small file, face ~45 px
        video_in = ["-loop", "1", "-framerate", "5", "-i", str(png)]
    else:
        video_in = ["-f", "lavfi", "-i", "testsrc=size=256x256:rate=5"]
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-y", *video_in, "-i", str(wav), "-shortest",
           "-c:v", "mpeg4", "-q:v", "5", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "48k", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


SENTENCE = "but it was really really awesome"


def _need_extract_tools() -> None:
    """Skip (or fail under MMLATCH_REQUIRE_SHARED=1, as CI sets) without espeak-ng or the extra."""
    import importlib.util
    import os

    import pytest

    missing = [m for m in ("librosa", "imageio_ffmpeg", "pocketsphinx", "dlib", "skimage", "soundfile")
               if importlib.util.find_spec(m) is None]
    if not espeak_available():
        missing.append("espeak-ng (apt-get install espeak-ng)")
    if missing:
        msg = f"media tests need {', '.join(missing)} (pip install -e '.[extract]')"
        if os.environ.get("MMLATCH_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def test_media(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """wav, face mp4, no-face mp4 of SENTENCE and the true word intervals (n, 2)."""
    _need_extract_tools()
    folder = tmp_path_factory.mktemp("media")
    wav, truth = synthesise(SENTENCE.split(), folder)
    return {
        "wav": wav, "truth": truth, "text": SENTENCE,
        "face": mux(wav, folder / "face.mp4", "face"),
        "noface": mux(wav, folder / "noface.mp4", "pattern"),
    }
