"""mmlatch: multimodal sentiment analysis with top-down feedback fusion."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_run"]


def __getattr__(name: str) -> Any:
    """Lazy top-level API: ``mmlatch.load_run`` without importing torch on ``import mmlatch``."""
    if name == "load_run":
        from mmlatch.analysis.predict import load_run

        return load_run
    raise AttributeError(f"module 'mmlatch' has no attribute {name!r}")
