"""The tiny training settings most tests train with (``from tiny import tiny_settings``).

A module of its own: ``conftest`` is ambiguous when the whole suite runs (tests/extract has
one too), so tests import these from here."""

from __future__ import annotations

#: the tiny training settings most tests train with (``--set`` items); see :func:`tiny_settings`
TINY_DEFAULTS = {
    "data_args.n_train": 48, "data_args.n_valid": 16, "data_args.n_test": 16, "data_args.max_len": 12,
    "model_args.hidden": 8, "batch_size": 16, "threads": 1,
}


def tiny_settings(extra: tuple[str, ...] | list[str] = (), **changes: object) -> list[str]:
    """``--set`` items of a tiny synthetic run (seconds on one core): :data:`TINY_DEFAULTS`
    with ``changes`` (``n_test=24`` for ``data_args.n_test``, ``hidden`` for
    ``model_args.hidden``; None drops a setting) and ``extra`` items appended."""
    names = {k.rpartition(".")[2]: k for k in TINY_DEFAULTS}
    settings: dict[str, object] = dict(TINY_DEFAULTS)
    for key, value in changes.items():
        settings[names.get(key, key)] = value
    return [f"{k}={v}" for k, v in settings.items() if v is not None] + list(extra)
