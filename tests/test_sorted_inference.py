"""Inference batches samples of similar lengths and returns results in the split's order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmlatch.data.batching import length_sorted_batches
from mmlatch.data.dataset import Split
from mmlatch.models import create_model
from mmlatch.training.inference import depends_on_batch_padding, infer

DIMS = {"text": 5, "audio": 3, "visual": 2}


def _split(lengths: list[int], max_len: int = 9, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    n = len(lengths)
    lens = np.asarray(lengths, dtype=np.int64)
    real = (np.arange(max_len)[None, :] < lens[:, None])[..., None]
    feats = {k: (rng.standard_normal((n, max_len, f)) * real).astype(np.float32) for k, f in DIMS.items()}
    return Split(feats, {k: lens.copy() for k in DIMS}, rng.standard_normal((n, 1)).astype(np.float32),
                 [f"s{i}" for i in range(n)])


def test_length_sorted_batches_by_hand() -> None:
    split = _split([3, 5, 1, 5, 2])
    # longest first, equal lengths in the split's order, cut into batches of 2
    assert length_sorted_batches(split, 2) == [[1, 3], [0, 4], [2]]
    assert length_sorted_batches(_split([]), 4) == []
    with pytest.raises(ValueError, match="batch_size"):
        length_sorted_batches(split, 0)


@pytest.mark.parametrize("name", ["mmlatch", "hctmg", "mult"])
def test_sorted_inference_is_each_sample_alone_in_the_split_order(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, DIMS, hidden=8).eval()
    lengths = [2, 9, 4, 1, 7, 9, 3]
    split = _split(lengths)
    out = infer(model, split, batch_size=3, labels=True, masks=name == "mmlatch")
    assert out.ids == split.ids
    np.testing.assert_array_equal(out.labels, split.labels)
    with torch.no_grad():
        for i, n in enumerate(lengths):
            alone = model({k: torch.from_numpy(v[i : i + 1, :n]) for k, v in split.features.items()}, torch.tensor([n]))
            np.testing.assert_allclose(out.prediction[i], alone.prediction[0].numpy(), atol=1e-5)
            if out.mask_means is not None:
                mean = alone.masks["audio"][0].mean(dim=0).numpy()  # (F,) over its n real steps
                np.testing.assert_allclose(out.mask_means["audio"][i], mean, atol=1e-5)


def test_released_padding_is_batched_in_the_split_order() -> None:
    released = create_model("mmlatch", DIMS, variant="authors", hidden=8).eval()
    assert depends_on_batch_padding(released)
    assert not depends_on_batch_padding(create_model("mmlatch", DIMS, hidden=8))
    seen: list[list[int]] = []
    released.register_forward_pre_hook(lambda mod, args: seen.append(args[1]["text"].tolist()))
    infer(released, _split([2, 9, 4, 1, 7]), batch_size=2)
    assert seen == [[2, 9], [4, 1], [7]]  # the split's order: its predictions depend on it
