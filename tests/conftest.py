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


from tiny import TINY_DEFAULTS, tiny_settings  # noqa: E402,F401  (re-exported for fixtures)


@pytest.fixture()
def tiny() -> list[str]:
    """The default tiny settings (``tiny_settings()``)."""
    return tiny_settings()
