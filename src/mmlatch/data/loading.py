"""One entry point from a ``--data`` value to a :class:`MultimodalDataset`."""

from __future__ import annotations

from typing import Any

from mmlatch.data.dataset import DataError, MultimodalDataset


def load_dataset(
    spec: str,
    *,
    modalities: list[str] | tuple[str, ...] | None = None,
    **options: Any,
) -> MultimodalDataset:
    """Load a dataset by name or path.

    Args:
        spec: ``"synthetic"`` for the built-in generated dataset, or a path to data on disk.
        modalities: keep only these modalities, in this order (default: all).
        **options: reader options (for ``synthetic``: see :func:`make_synthetic`).
    Returns:
        The dataset, every split validated.
    """
    if spec == "synthetic":
        from mmlatch.data.synthetic import make_synthetic

        ds = make_synthetic(**options)
    else:
        from mmlatch.data import readers

        ds = readers.read_path(spec, modalities=modalities, **options)
    if modalities:
        ds = ds.select_modalities(list(modalities))
    return ds


__all__ = ["load_dataset", "DataError"]
