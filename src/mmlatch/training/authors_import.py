"""``mmlatch import authors``: a released MMLatch checkpoint -> a normal run directory.

The run directory holds ``model.json`` (``variant: authors``, dims read from the weights),
``model.safetensors``, ``config.yaml`` (the paper's MOSEI settings, data as given) and
``imported.json`` (where the weights came from). ``evaluate``, ``predict``, ``analyze``,
``robustness`` and ``export`` accept it like a trained run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from mmlatch.data import TaskSpec
from mmlatch.models import create_model, model_arguments
from mmlatch.models.authors import (
    AUTHORS_MODELS,
    AuthorsCheckpointError,
    authors_dims,
    authors_model_kind,
    from_authors_state,
)
from mmlatch import rundir
from mmlatch.files import WriteError, write_json
from mmlatch.rundir import RunError, writer_lock
from mmlatch.training.config import TrainConfig, save_config

#: what ``config.yaml`` of an imported run names as its data when none is given
DEFAULT_DATA = "mosei_senti_data.pkl"


def read_authors_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (loaded with ``weights_only=True``).

    Raises:
        FileNotFoundError: no such file.
        AuthorsCheckpointError: the file is not a state dict of tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors name the problem
        raise AuthorsCheckpointError(f"{p}: not a PyTorch state dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise AuthorsCheckpointError(f"{p}: expected a state dict of tensors, got {type(state).__name__}")
    return dict(state)


def import_authors(
    checkpoint: str | Path, model: str, out_dir: str | Path, data: str | None = None
) -> dict[str, Any]:
    """Write a run directory whose model carries the released weights.

    Args:
        checkpoint: a state dict saved by the released trainer.
        model: ``baseline``, ``mmlatch`` (LSTM masks) or ``mmlatch-linear`` (static masks);
            it must match the checkpoint.
        out_dir: the run directory to write.
        data: the data ``config.yaml`` names (``evaluate --data`` can replace it).
    Returns:
        The ``model.json`` content.
    """
    if model not in AUTHORS_MODELS:
        raise ValueError(f"--model must be one of {', '.join(AUTHORS_MODELS)}; got {model!r}")
    state = read_authors_checkpoint(checkpoint)
    kind = authors_model_kind(state)
    if kind != model:
        raise AuthorsCheckpointError(f"{checkpoint} holds a released {kind} (by its feedback keys), not a {model}")
    dims, hidden, num_outputs = authors_dims(state)
    net = create_model(model, dims, variant="authors", hidden=hidden, num_outputs=num_outputs)
    net.load_state_dict(from_authors_state(state, model, net.state_dict()))
    task = TaskSpec() if num_outputs == 1 else TaskSpec(
        "regression", num_outputs, tuple(f"output{i}" for i in range(num_outputs)), None
    )
    args = model_arguments(model)
    args.update(variant="authors", hidden=hidden, num_outputs=num_outputs)
    spec = {"model": model, "model_args": args, "modality_dims": dims, "task": asdict(task)}
    out = Path(out_dir)
    cfg = TrainConfig(model=model, model_args={"variant": "authors", "hidden": hidden}, data=data or DEFAULT_DATA)
    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    with writer_lock(out):  # one writer; the weights before the model.json that names their hash
        try:
            save_config(cfg, out / rundir.CONFIG)
            rundir.save_weights(out, net.state_dict(), spec)  # the weights, then model.json with their hash
            write_json(
                out / "imported.json",
                {"source": "authors", "checkpoint": str(checkpoint), "sha256": digest, "tensors": len(state)},
            )
        except WriteError as exc:
            raise RunError(f"{exc}; files written before are intact: free space and re-run the same command") from None
    return spec
