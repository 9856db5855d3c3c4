"""What the two step-parity benchmarks (training_parity.py, mult_parity.py) share: the batches
fed to both codes in the same order, and one batch's tensors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor


def step_batches(lengths: np.ndarray, batch_size: int, mode: str, rng: np.random.Generator) -> Iterator[list[int]]:
    """Sample indices, batch after batch, forever: ``equal``, batches of samples of one length
    (no padding), in random order; otherwise shuffled batches of any lengths."""
    while True:
        if mode == "equal":
            groups: dict[int, list[int]] = {}
            for i in rng.permutation(len(lengths)):
                groups.setdefault(int(lengths[i]), []).append(int(i))
            bs = [g[j:j + batch_size] for g in groups.values() for j in range(0, len(g), batch_size)]
            for k in rng.permutation(len(bs)):
                yield bs[k]
        else:
            order = rng.permutation(len(lengths))
            for j in range(0, len(order), batch_size):
                yield [int(i) for i in order[j:j + batch_size]]


def batch_tensors(
    split: Any, idx: np.ndarray, modalities: list[str] | dict[str, int], dtype: torch.dtype
) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """One batch of a dataset split: lengths (B,), features {m: (B, L, F_m)} cut to the longest
    sample, labels (B, 1) or (B,) as stored."""
    ln = torch.from_numpy(split.lengths["text"][idx].astype(np.int64))
    x = {
        m: torch.from_numpy(np.ascontiguousarray(split.features[m][idx, : int(ln.max())])).to(dtype)
        for m in modalities
    }
    return ln, x, torch.from_numpy(split.labels[idx]).to(dtype)
