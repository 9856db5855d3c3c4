"""From a :class:`Split` to padded batches of tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from mmlatch.data.dataset import Split


@dataclass
class Batch:
    """A batch: modality -> (B, L, F_k) end-padded features, lengths, labels, ids, and the
    samples' raw texts where the split has them (else None).

    ``L`` is the longest sample of the batch (per modality), never the dataset's maximum.
    """

    features: dict[str, Tensor]
    lengths: dict[str, Tensor]
    labels: Tensor  # (B, num_outputs)
    ids: list[str]
    texts: list[str] | None = None

    def to(self, device: torch.device | str) -> Batch:
        """A copy on ``device``."""
        return Batch(
            {k: v.to(device, non_blocking=True) for k, v in self.features.items()},
            {k: v.to(device, non_blocking=True) for k, v in self.lengths.items()},
            self.labels.to(device, non_blocking=True),
            self.ids,
            self.texts,
        )

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (the DataLoader's ``pin_memory=True`` calls it), so
        ``to(cuda, non_blocking=True)`` copies asynchronously."""
        return Batch(
            {k: v.pin_memory() for k, v in self.features.items()},
            {k: v.pin_memory() for k, v in self.lengths.items()},
            self.labels.pin_memory(),
            self.ids,
            self.texts,
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])


class SplitDataset(Dataset):
    """Index dataset over a split; :meth:`collate` gathers whole batches with numpy slicing."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> int:
        return index

    def collate(self, indices: list[int]) -> Batch:
        """Gather samples ``indices`` into a :class:`Batch` trimmed to the batch's longest."""
        idx = np.asarray(indices, dtype=np.int64)
        feats, lens = {}, {}
        for m, x in self.split.features.items():
            ln = self.split.lengths[m][idx]
            feats[m] = torch.from_numpy(np.ascontiguousarray(x[idx, : int(ln.max())]))
            lens[m] = torch.from_numpy(ln.copy())
        labels = torch.from_numpy(np.ascontiguousarray(self.split.labels[idx]))
        texts = None if self.split.texts is None else [self.split.texts[i] for i in idx]
        return Batch(feats, lens, labels, [self.split.ids[i] for i in idx], texts)


class EpochShuffleSampler(Sampler[int]):
    """Random order that depends only on (seed, epoch), so a resumed run sees the batches an
    uninterrupted one would. Lightning calls :meth:`set_epoch` before every epoch; without
    it, each new iteration counts as the next epoch.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0
        self._explicit = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._explicit = epoch, True

    def __iter__(self):  # type: ignore[no-untyped-def]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        if not self._explicit:
            self.epoch += 1
        self._explicit = False
        return iter(order)

    def __len__(self) -> int:
        return self.n


#: orders of training batches: ``shuffle`` (a random order) or ``bucket`` (length-bucketed)
BATCHINGS = ("shuffle", "bucket")
#: batches per bucket of ``batching: bucket``
BUCKET_BATCHES = 50


def sample_lengths(split: Split) -> np.ndarray:
    """(N,) each sample's longest modality: what its batch is padded to."""
    return np.max(np.stack([np.asarray(v) for v in split.lengths.values()]), axis=0)


class BucketBatchSampler(Sampler[list[int]]):
    """Length-bucketed batches: shuffle the samples, cut the order into buckets of
    ``bucket_batches * batch_size`` samples, sort each bucket by length (longest first) and
    cut it into batches, then shuffle the batches. Batches hold samples of similar lengths,
    so they carry little padding; every sample comes exactly once per epoch; the order
    depends only on (seed, epoch), as :class:`EpochShuffleSampler`'s.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, bucket_batches: int = BUCKET_BATCHES) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.bucket = batch_size, seed, bucket_batches * batch_size
        self.epoch, self._explicit = 0, False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._explicit = epoch, True

    def __iter__(self):  # type: ignore[no-untyped-def]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=g).numpy()
        batches = []
        for start in range(0, len(order), self.bucket):
            bucket = order[start : start + self.bucket]
            bucket = bucket[np.argsort(-self.lengths[bucket], kind="stable")]
            batches += [bucket[i : i + self.batch_size].tolist() for i in range(0, len(bucket), self.batch_size)]
        if not self._explicit:
            self.epoch += 1
        self._explicit = False
        return iter([batches[i] for i in torch.randperm(len(batches), generator=g).tolist()])

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.bucket)
        return full * -(-self.bucket // self.batch_size) + -(-rest // self.batch_size)


def length_sorted_batches(split: Split, batch_size: int) -> list[list[int]]:
    """Batches of samples of similar lengths, for inference: the split's indices sorted by
    length (longest first; equal lengths in the split's order), cut into ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    order = np.argsort(-sample_lengths(split), kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def make_loader(
    split: Split,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
    batching: str = "shuffle",
    batches: list[list[int]] | None = None,
) -> DataLoader:
    """A DataLoader of :class:`Batch` over ``split``; shuffling is seeded for reproducibility.

    ``pin_memory``: batches in page-locked memory (for training on CUDA). ``batching``
    (with ``shuffle``): ``shuffle`` (a random order) or ``bucket`` (:class:`BucketBatchSampler`).
    ``batches`` (without ``shuffle``): these batches of indices, in this order (e.g.
    :func:`length_sorted_batches`), instead of the split's order cut into ``batch_size``.
    """
    if batching not in BATCHINGS:
        raise ValueError(f"batching {batching!r}: choose one of {', '.join(BATCHINGS)}")
    ds = SplitDataset(split)
    if batches is not None:
        if shuffle:
            raise ValueError("make_loader: give either shuffle or batches, not both")
        return DataLoader(ds, batch_sampler=batches, collate_fn=ds.collate, num_workers=num_workers, pin_memory=pin_memory)
    if shuffle and batching == "bucket":
        return DataLoader(
            ds,
            batch_sampler=BucketBatchSampler(sample_lengths(split), batch_size, seed),
            collate_fn=ds.collate,
            num_workers=num_workers,
            pin_memory=pin_memory,
            generator=torch.Generator().manual_seed(seed),
        )
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(ds), seed) if shuffle else None,
        collate_fn=ds.collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        # Its own generator: creating an iterator must not draw from the global RNG, or the
        # dropout masks of a resumed run would differ from an uninterrupted one.
        generator=torch.Generator().manual_seed(seed),
    )
