"""Analysis: masks, plots, tables (built on finished runs).

- :mod:`.collect`: a run with its data, its outputs on a split (predictions, per-sample
  mask means, unimodal predictions, gates), figure helpers;
- :mod:`.masks`: top-down masks averaged per sentiment class (the paper's Fig. 2);
- :mod:`.gates`: HCT-MG's modality gate over training;
- :mod:`.incongruity`: error on samples whose unimodal predictions disagree in sign;
- :mod:`.curves`: training curves of several runs;
- :mod:`.robustness`: test-time corruption curves and their AUC;
- :mod:`.predict`: ``load_run(DIR).predict(...)`` and prediction on (unlabelled) files;
- :mod:`.export`: ONNX / TorchScript export checked against PyTorch.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "load_run":  # lazy: importing mmlatch.analysis stays cheap
        from mmlatch.analysis.predict import load_run

        return load_run
    raise AttributeError(f"module 'mmlatch.analysis' has no attribute {name!r}")


__all__ = ["load_run"]
