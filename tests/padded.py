"""Test helper: random end-padded modalities, each of its own lengths."""

from __future__ import annotations

import torch


def padded_modalities(lengths: dict[str, list[int]], dims: dict[str, int], seed: int = 0):
    """modality -> (B, L_k, F_k) random features, zero beyond each length; and the lengths."""
    g = torch.Generator().manual_seed(seed)
    feats, lens = {}, {}
    for k, f in dims.items():
        ln = torch.tensor(lengths[k])
        mask = torch.arange(int(ln.max()))[None, :] < ln[:, None]
        feats[k] = torch.randn(len(ln), int(ln.max()), f, generator=g) * mask[..., None]
        lens[k] = ln
    return feats, lens
