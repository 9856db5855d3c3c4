"""What each registered extractor costs per minute of media, measured in one process.

A minute of input is made on the spot: 150 words (a typical speaking rate) for text
extractors, 60 s of a voiced signal (a 140 Hz sawtooth, amplitude-modulated) for audio, and
300 frames (5 frames/s, the default) of scikit-image's astronaut photo scaled to 480 px for
visual ones. Each extractor runs ``--repeats`` times, interleaved with the others so that
load from other processes hits all alike; the median CPU seconds (process time) and wall
seconds per minute of media are printed, loading time separately. Usage:

    OMP_NUM_THREADS=1 python benchmarks/extractor_cost.py [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mmlatch.extract import create_extractor, extractor_names

SR = 16000


def _inputs() -> dict[str, object]:
    words = ("it was really good but the ending was not what i expected at all honestly " * 11).split()[:150]
    t = np.arange(60 * SR) / SR
    audio = (0.3 * (2 * ((140 * t) % 1) - 1) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    import skimage.data
    from PIL import Image

    face = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((480, 480)))
    return {"text": words, "audio": audio, "visual": [face] * 300}


def _run(modality: str, ex: object, data: object) -> None:
    if modality == "text":
        ex.embed(data)  # type: ignore[attr-defined]
    elif modality == "audio":
        ex.frames(data, SR)  # type: ignore[attr-defined]
    else:
        for frame in data:  # type: ignore[attr-defined]
            ex.frame(frame)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = _inputs()
    loaded, load_s = {}, {}
    for m in ("text", "audio", "visual"):
        for name in extractor_names(m):
            t0 = time.perf_counter()
            loaded[(m, name)] = create_extractor(m, name)
            load_s[(m, name)] = time.perf_counter() - t0
    cpu: dict[tuple[str, str], list[float]] = {k: [] for k in loaded}
    wall: dict[tuple[str, str], list[float]] = {k: [] for k in loaded}
    for _ in range(args.repeats):
        for (m, name), ex in loaded.items():
            c0, w0 = time.process_time(), time.perf_counter()
            _run(m, ex, data[m])
            cpu[(m, name)].append(time.process_time() - c0)
            wall[(m, name)].append(time.perf_counter() - w0)
    print(f"| modality | extractor | dims | CPU s per minute | wall s per minute | load s (wall) |  (threads {args.threads})")
    print("|---|---|---|---|---|---|")
    for (m, name), ex in loaded.items():
        print(f"| {m} | {name} | {ex.dim} | {np.median(cpu[(m, name)]):.2f} | {np.median(wall[(m, name)]):.2f} "
              f"| {load_s[(m, name)]:.1f} |")


if __name__ == "__main__":
    main()
