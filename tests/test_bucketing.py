"""Length-bucketed batches: every sample once per epoch, seeded, less padding."""

from __future__ import annotations

import numpy as np
import pytest

from mmlatch.data.batching import BucketBatchSampler, EpochShuffleSampler, make_loader
from mmlatch.data.synthetic import make_synthetic
from mmlatch.training.config import ConfigError, TrainConfig


def _lengths(n: int = 203) -> np.ndarray:
    return np.random.default_rng(0).integers(1, 60, size=n)


@pytest.mark.parametrize(("n", "batch", "bucket_batches"), [(203, 8, 3), (64, 8, 3), (5, 8, 2), (203, 203, 1)])
def test_every_sample_comes_exactly_once_per_epoch(n: int, batch: int, bucket_batches: int) -> None:
    sampler = BucketBatchSampler(_lengths(n), batch, seed=1, bucket_batches=bucket_batches)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == list(range(n))
        assert len(batches) == len(sampler) and all(1 <= len(b) <= batch for b in batches)


def test_the_order_is_seeded_per_epoch_and_sorted_inside_buckets() -> None:
    lengths = _lengths()
    a, b = BucketBatchSampler(lengths, 8, seed=1, bucket_batches=3), BucketBatchSampler(lengths, 8, seed=1, bucket_batches=3)
    a.set_epoch(2), b.set_epoch(2)
    first = list(a)
    assert first == list(b)  # same seed and epoch: same batches in the same order
    b.set_epoch(3)
    assert first != list(b)
    other = BucketBatchSampler(lengths, 8, seed=2, bucket_batches=3)
    other.set_epoch(2)
    assert first != list(other)
    for batch in first:  # each batch comes from one sorted bucket: longest first
        assert list(lengths[batch]) == sorted(lengths[batch], reverse=True)


def test_bucketing_cuts_the_padding() -> None:
    lengths = _lengths(1000)
    bucketed = BucketBatchSampler(lengths, 32, seed=0, bucket_batches=10)
    order = list(EpochShuffleSampler(len(lengths), seed=0))
    shuffled = [order[i : i + 32] for i in range(0, len(order), 32)]
    padded = lambda batches: sum(len(b) * lengths[b].max() for b in batches)  # noqa: E731
    assert padded(list(bucketed)) < 0.7 * padded(shuffled)


def test_a_bucketed_loader_gives_every_training_sample_once() -> None:
    split = make_synthetic(n_train=70, n_valid=4, n_test=4, max_len=12).split("train")
    loader = make_loader(split, 16, shuffle=True, seed=0, batching="bucket")
    ids = [i for batch in loader for i in batch.ids]
    assert sorted(ids) == sorted(split.ids)
    with pytest.raises(ValueError, match="choose one of shuffle, bucket"):
        make_loader(split, 16, shuffle=True, batching="sorted")
    with pytest.raises(ConfigError, match="batching"):
        TrainConfig.from_dict({"batching": "sorted"})


def test_a_run_trains_with_bucketed_batches(tmp_path) -> None:
    from mmlatch.training import load_config, train

    tiny = ["data_args.n_train=40", "data_args.n_valid=8", "data_args.n_test=8", "data_args.max_len=8",
            "model_args.hidden=8", "batch_size=8", "batching=bucket", "threads=1", "precision=32"]
    cfg = load_config(None, tiny, data="synthetic", model="baseline", epochs=1, seed=0, progress=False)
    metrics = train(cfg, tmp_path / "r", log=lambda _: None)
    assert metrics["epochs_run"] == 1 and np.isfinite(metrics["test"]["mae"])
    assert "batching: bucket" in (tmp_path / "r" / "config.yaml").read_text()
