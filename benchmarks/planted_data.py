"""Write a dataset with a planted cross-modal structure as a MulT pickle (training parity, issue 22).

One modality's context decides which features of the others carry the sentiment: every
sample has a sentiment ``s`` (the label) and an independent decoy ``s'``; the text shows a
context bit ``c`` (a fixed direction added with sign +/- on a random half of the words).
With ``c = +1`` audio features 0-7 and visual 0-5 express ``s`` and audio 8-15 / visual 6-11
express ``s'``; with ``c = -1`` the other way round. Audio and visual alone cannot tell
which group is genuine; the text alone does not know ``s``. Every feature is on a unit scale
(noise std 1, signals of size <= 1), so no standardisation rule switches on.

Layout: MulT's ``mosei_senti_data.pkl`` (``{split: {text (N, 50, 300), audio (N, 50, 74),
vision (N, 50, 35), labels (N, 1, 1), id (N, 3)}}``, zero rows as padding at the FRONT),
which ``mmlatch train --data``, MulT's public code and a harness of the authors' code all read.

    python benchmarks/planted_data.py --out /tmp/parity/data/planted_data.pkl
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

DIMS = {"text": 300, "audio": 74, "vision": 35}
GROUPS = {"audio": (slice(0, 8), slice(8, 16)), "vision": (slice(0, 6), slice(6, 12))}


def planted(
    n: int = 1500,
    max_len: int = 50,
    min_len: int = 10,
    seed: int = 0,
    context_scale: float = 0.6,
    signal: float = 0.8,
    text_dim: int = 300,
) -> dict[str, dict[str, np.ndarray]]:
    """The MulT-layout dict, split 70/10/20 (train/valid/test)."""
    rng = np.random.default_rng(seed)
    dims = dict(DIMS, text=text_dim)
    grid = np.arange(-9, 10) / 3.0  # MOSEI's 1/3 grid in [-3, 3]
    s = rng.choice(grid, n)
    decoy = rng.choice(grid, n)
    c = rng.choice([-1.0, 1.0], n)
    lengths = rng.integers(min_len, max_len + 1, n)
    direction = rng.standard_normal(dims["text"]).astype(np.float32)
    direction /= np.linalg.norm(direction) / np.sqrt(16.0)  # norm 4 spread over all features
    patterns = {m: rng.choice([-1.0, 1.0], size=(2, g[0].stop - g[0].start)) for m, g in GROUPS.items()}
    out = {m: np.zeros((n, max_len, f), np.float32) for m, f in dims.items()}
    for i in range(n):
        ln = int(lengths[i])
        start = max_len - ln  # front padding
        text = rng.standard_normal((ln, dims["text"])).astype(np.float32)
        shown = rng.random(ln) < 0.5
        text[shown] += c[i] * context_scale * direction
        out["text"][i, start:] = text
        for m, (g1, g2) in GROUPS.items():
            x = rng.standard_normal((ln, dims[m])).astype(np.float32)
            first, second = (s[i], decoy[i]) if c[i] > 0 else (decoy[i], s[i])
            x[:, g1] += signal * (first / 3.0) * patterns[m][0]
            x[:, g2] += signal * (second / 3.0) * patterns[m][1]
            out[m][i, start:] = x
    idx = rng.permutation(n)
    n_train, n_valid = int(round(0.7 * n)), int(round(0.1 * n))
    parts = {"train": idx[:n_train], "valid": idx[n_train:n_train + n_valid], "test": idx[n_train + n_valid:]}
    data = {}
    for split, rows in parts.items():
        data[split] = {m: out[m][rows] for m in dims}
        data[split]["labels"] = s[rows].reshape(-1, 1, 1).astype(np.float32)
        data[split]["id"] = np.array([[f"s{r}", "0", str(int(lengths[r]))] for r in rows])
    return data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the pickle to write (e.g. /tmp/parity/data/planted_data.pkl)")
    p.add_argument("--n", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--text-dim", type=int, default=300)
    a = p.parse_args()
    data = planted(a.n, seed=a.seed, text_dim=a.text_dim)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "wb") as f:
        pickle.dump(data, f, protocol=4)
    print(f"{a.out}: " + ", ".join(f"{k} {len(v['labels'])}" for k, v in data.items()))


if __name__ == "__main__":
    main()
