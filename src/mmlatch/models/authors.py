"""The authors' released MMLatch state dicts <-> this library's ``authors`` variant.

The released trainer (github georgepar/mmlatch, ``run.py`` + ``trainer.py``) saves
``AVTClassifier.state_dict()`` (ignite ``ModelCheckpoint``, ``save_as_state_dict=True``):
67 tensors for the baseline, 91 with LSTM feedback (``learnable_sequence_mask``), 79 with
feed-forward feedback (``learnable_static_mask``). Every tensor maps to exactly one of ours,
with the same shape; nothing is transposed or reordered:

- ``encoder.<m>.encoder.rnn.rnn.<w>_l0`` / ``..._l0_reverse`` -> ``encoders.<m>.rnn.fwd/bwd.<w>_l0``
- ``encoder.<m>.encoder.attention.{q,k,v}.weight`` -> ``encoders.<m>.attention.*``
- ``encoder.fuser.att_fuser.{ta,tv,va}``: ``SymmetricAttention(x, y)`` with x = text, text,
  visual and y = audio, visual, audio; ``qx, ky, vy`` attend from x to y
  (``fusion.cross.x__y``), ``qy, kx, vx`` from y to x (``fusion.cross.y__x``)
- ``encoder.fuser.att_fuser.tav.*`` -> ``fusion.to_primary.audio_visual.*`` (queries m_AV)
- ``encoder.fuser.rnn.rnn.rnn.*`` -> ``readout.rnn.fwd/bwd.*``;
  ``encoder.fuser.rnn.attention.*`` -> ``readout.pool.*``; ``classifier.*`` -> ``head.*``
- ``encoder.fm.f1`` masks text from audio (``mask1``) and visual (``mask2``), ``f2`` audio
  from text and visual, ``f3`` visual from text and audio -> ``feedback.<source>__<target>``
  (``.rnn.*`` for LSTM masks, ``.proj.*`` for static ones).

Top-down models' backbone keys carry the prefix ``backbone.``.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

#: the released model's modalities, in its order (which is also our fused block order)
AUTHORS_MODALITIES: tuple[str, str, str] = ("text", "audio", "visual")
#: models the released layout can become
AUTHORS_MODELS: dict[str, str | None] = {"baseline": None, "mmlatch": "lstm", "mmlatch-linear": "linear"}

_LSTM = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_SYMMETRIC = {"ta": ("text", "audio"), "tv": ("text", "visual"), "va": ("visual", "audio")}
_FEEDBACK = {  # unit -> (target, source of mask1, source of mask2)
    "f1": ("text", "audio", "visual"),
    "f2": ("audio", "text", "visual"),
    "f3": ("visual", "text", "audio"),
}


class AuthorsCheckpointError(ValueError):
    """A state dict does not have the released layout; the message lists what differs."""


def _bilstm(theirs: str, ours: str) -> dict[str, str]:
    out = {}
    for w in _LSTM:
        out[f"{theirs}.{w}_l0"] = f"{ours}.fwd.{w}_l0"
        out[f"{theirs}.{w}_l0_reverse"] = f"{ours}.bwd.{w}_l0"
    return out


def authors_key_map(model: str) -> dict[str, str]:
    """Released key -> our key, for ``model`` in :data:`AUTHORS_MODELS` (every tensor)."""
    if model not in AUTHORS_MODELS:
        raise ValueError(f"the released layout maps to {', '.join(AUTHORS_MODELS)}; got {model!r}")
    feedback = AUTHORS_MODELS[model]
    pre = "backbone." if feedback else ""
    keys: dict[str, str] = {}
    for m in AUTHORS_MODALITIES:
        keys.update(_bilstm(f"encoder.{m}.encoder.rnn.rnn", f"{pre}encoders.{m}.rnn"))
        for p in "qkv":
            keys[f"encoder.{m}.encoder.attention.{p}.weight"] = f"{pre}encoders.{m}.attention.{p}.weight"
    for name, (x, y) in _SYMMETRIC.items():
        base = f"encoder.fuser.att_fuser.{name}"
        for p in "qkv":
            # q from the query side, k/v from the key side
            src_xy = {"q": "qx", "k": "ky", "v": "vy"}[p]
            src_yx = {"q": "qy", "k": "kx", "v": "vx"}[p]
            keys[f"{base}.{src_xy}.weight"] = f"{pre}fusion.cross.{x}__{y}.{p}.weight"
            keys[f"{base}.{src_yx}.weight"] = f"{pre}fusion.cross.{y}__{x}.{p}.weight"
    for p in "qkv":
        keys[f"encoder.fuser.att_fuser.tav.{p}.weight"] = f"{pre}fusion.to_primary.audio_visual.{p}.weight"
    keys.update(_bilstm("encoder.fuser.rnn.rnn.rnn", f"{pre}readout.rnn"))
    for p in "qkv":
        keys[f"encoder.fuser.rnn.attention.{p}.weight"] = f"{pre}readout.pool.{p}.weight"
    keys["classifier.weight"] = f"{pre}head.weight"
    keys["classifier.bias"] = f"{pre}head.bias"
    if feedback:
        for unit, (target, src1, src2) in _FEEDBACK.items():
            for mask, src in (("mask1", src1), ("mask2", src2)):
                theirs, ours = f"encoder.fm.{unit}.{mask}", f"feedback.{src}__{target}"
                if feedback == "lstm":
                    for w in _LSTM:
                        keys[f"{theirs}.rnn.{w}_l0"] = f"{ours}.rnn.{w}_l0"
                else:
                    keys[f"{theirs}.weight"] = f"{ours}.proj.weight"
                    keys[f"{theirs}.bias"] = f"{ours}.proj.bias"
    return keys


def authors_model_kind(state: Mapping[str, Tensor]) -> str:
    """Which of :data:`AUTHORS_MODELS` a released state dict holds (by its feedback keys)."""
    if "encoder.fm.f1.mask1.rnn.weight_ih_l0" in state:
        return "mmlatch"
    if "encoder.fm.f1.mask1.weight" in state:
        return "mmlatch-linear"
    return "baseline"


def authors_dims(state: Mapping[str, Tensor]) -> tuple[dict[str, int], int, int]:
    """(modality dims, hidden size d, number of outputs), read from a released state dict."""
    need = [f"encoder.{m}.encoder.rnn.rnn.weight_ih_l0" for m in AUTHORS_MODALITIES] + ["classifier.weight"]
    missing = [k for k in need if k not in state]
    if missing:
        raise AuthorsCheckpointError(f"not the released MMLatch layout: no {', '.join(missing)}")
    dims = {m: int(state[f"encoder.{m}.encoder.rnn.rnn.weight_ih_l0"].shape[1]) for m in AUTHORS_MODALITIES}
    hidden = int(state["encoder.text.encoder.rnn.rnn.weight_hh_l0"].shape[1]) if (
        "encoder.text.encoder.rnn.rnn.weight_hh_l0" in state
    ) else int(state["encoder.text.encoder.rnn.rnn.weight_ih_l0"].shape[0]) // 4
    return dims, hidden, int(state["classifier.weight"].shape[0])


def from_authors_state(
    state: Mapping[str, Tensor], model: str, expected: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Our state dict from a released one.

    Args:
        state: the released state dict.
        model: the target model (:data:`AUTHORS_MODELS`).
        expected: our model's own ``state_dict()`` (names and shapes to fill).
    Raises:
        AuthorsCheckpointError: listing missing, unexpected and mis-shaped keys.
    """
    keys = authors_key_map(model)
    missing = sorted(set(keys) - set(state))
    unexpected = sorted(set(state) - set(keys))
    shapes = [
        f"{k}: {tuple(state[k].shape)} (expected {tuple(expected[ours].shape)})"
        for k, ours in keys.items()
        if k in state and tuple(state[k].shape) != tuple(expected[ours].shape)
    ]
    uncovered = sorted(set(expected) - set(keys.values()))
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if shapes:
        problems.append(f"mis-shaped keys: {'; '.join(shapes)}")
    if uncovered:
        problems.append(f"our {model} has tensors the layout does not fill: {', '.join(uncovered)}")
    if problems:
        raise AuthorsCheckpointError(f"not a released {model} state dict: " + " | ".join(problems))
    return {ours: state[theirs].detach().clone().contiguous() for theirs, ours in keys.items()}


def to_authors_state(state: Mapping[str, Tensor], model: str) -> dict[str, Tensor]:
    """The released layout of our ``authors``-variant state dict (the inverse mapping)."""
    keys = authors_key_map(model)
    missing = sorted(ours for ours in keys.values() if ours not in state)
    if missing:
        raise AuthorsCheckpointError(f"not an authors-variant {model} state dict: no {', '.join(missing)}")
    return {theirs: state[ours].detach().clone().contiguous() for theirs, ours in keys.items()}
