"""Data: readers -> in-memory dataset -> batches."""

from mmlatch.data.dataset import (
    SPLITS,
    DataError,
    MultimodalDataset,
    Split,
    TaskSpec,
    lengths_from_padding,
)
from mmlatch.data.loading import load_dataset

__all__ = [
    "SPLITS",
    "DataError",
    "MultimodalDataset",
    "Split",
    "TaskSpec",
    "lengths_from_padding",
    "load_dataset",
]
