"""Decoding media with the ffmpeg binary that ``imageio-ffmpeg`` ships (no system ffmpeg).

Audio comes out as mono float32 at the spec's sample rate; video as RGB frames resampled to
the spec's frame rate (ffmpeg's ``fps`` filter) and scaled so the longer side is at most
``max_side`` pixels. ``start``/``end`` (seconds) cut a segment out of a longer recording.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mmlatch.extract.errors import ClipError, ExtractError


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise ExtractError(
            "decoding media needs imageio-ffmpeg: pip install 'mmlatch[extract]'"
        ) from e
    return imageio_ffmpeg.get_ffmpeg_exe()


def _segment_args(start: float | None, end: float | None) -> list[str]:
    args: list[str] = []
    if start is not None:
        args += ["-ss", f"{start:.3f}"]
    if end is not None:
        args += ["-to", f"{end:.3f}"]
    return args


def _first_error_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg failed without a message"


def has_stream(path: Path, kind: str) -> bool:
    """Whether ffmpeg sees an ``audio`` or ``video`` stream in ``path`` (a cover image counts as video)."""
    proc = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-i", str(path)], capture_output=True)
    text = proc.stderr.decode(errors="replace")
    return f": {kind.capitalize()}:" in text


def decode_audio(
    path: Path, sample_rate: int, start: float | None = None, end: float | None = None
) -> np.ndarray:
    """(T,) float32 mono samples in [-1, 1]; ClipError when unreadable or without audio."""
    if not path.is_file():
        raise ClipError(f"media file {path} does not exist")
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", *_segment_args(start, end), "-i", str(path),
           "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise ClipError(f"cannot decode audio of {path.name}: {_first_error_line(proc.stderr)}")
    samples = np.frombuffer(proc.stdout, dtype=np.float32)
    if samples.size == 0:
        why = "no audio stream" if not has_stream(path, "audio") else "empty audio"
        raise ClipError(f"{path.name}: {why}")
    return samples.copy()


def decode_video(
    path: Path, fps: float, max_side: int, start: float | None = None, end: float | None = None
) -> tuple[Iterator[np.ndarray], float]:
    """Frames (H, W, 3) uint8 at ``fps`` and the time of the first (always 0: frames are
    sampled at ``(i + 0.5) / fps`` seconds, ffmpeg's ``fps`` filter rounding).

    Raises:
        ClipError: no video stream or unreadable file.
    """
    if not path.is_file():
        raise ClipError(f"media file {path} does not exist")
    if not has_stream(path, "video"):
        raise ClipError(f"{path.name}: no video stream (visual features need a video)")
    import imageio_ffmpeg

    scale = f"scale='if(gt(iw,ih),min({max_side},iw),-2)':'if(gt(iw,ih),-2,min({max_side},ih))'"
    try:
        gen = imageio_ffmpeg.read_frames(
            str(path), pix_fmt="rgb24", input_params=["-nostdin", *_segment_args(start, end)],
            output_params=["-vf", f"fps={fps},{scale}"],
        )
        meta = next(gen)
    except (RuntimeError, OSError, StopIteration) as e:
        raise ClipError(f"cannot decode video of {path.name}: {e}") from e
    w, h = meta["size"]

    def frames() -> Iterator[np.ndarray]:
        try:
            for raw in gen:
                yield np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)
        except (RuntimeError, OSError) as e:
            raise ClipError(f"cannot decode video of {path.name}: {e}") from e

    return frames(), 0.0
