"""Shared test settings: one torch thread per test worker, and the shared-data fixture."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tests run as 2 xdist workers on 2 cores: avoid oversubscription

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: skip when absent, fail instead when MMLATCH_REQUIRE_SHARED=1."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("MMLATCH_REQUIRE_SHARED") == "1":
            pytest.fail(f"MMLATCH_REQUIRE_SHARED=1 but {SHARED_DATA} does not exist")
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


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


@pytest.fixture()
def tiny() -> list[str]:
    """The default tiny settings (``tiny_settings()``)."""
    return tiny_settings()
