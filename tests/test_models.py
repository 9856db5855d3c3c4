"""Registry-driven checks: every registered model gets them the moment it is registered."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from mmlatch.models import create_model, list_models, model_arguments
from mmlatch.modules import TopDown

DIMS = {"text": 6, "audio": 5, "visual": 4}  # tiny dims keep the suite fast
SMALL = {
    "hidden": 8,
    # the classic models' other sizes (tfn, lmf, lf-dnn, mfn, graph-mfn)
    "audio_hidden": 4, "visual_hidden": 4, "text_out": 4, "post_fusion_dim": 8, "memsize": 8,
    "attn_hidden": 8, "memory_hidden": 8, "gamma1_hidden": 8, "gamma2_hidden": 8, "out_hidden": 8,
    "inner_node_dim": 8, "efficacy_hidden": 8,
}


def _small(name: str, dims: dict[str, int] = DIMS, **kw) -> torch.nn.Module:
    args = {k: v for k, v in SMALL.items() if k in model_arguments(name)}
    args.update(kw)
    torch.manual_seed(0)
    return create_model(name, dims, **args)


def _batch(lengths: list[int], dims: dict[str, int] = DIMS, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    max_len = max(lengths)
    lens = torch.tensor(lengths)
    mask = torch.arange(max_len)[None, :] < lens[:, None]
    feats = {k: torch.randn(len(lengths), max_len, f, generator=g) * mask[..., None] for k, f in dims.items()}
    return feats, lens


MODELS = list_models()
#: parameters a model cannot use on word-aligned batches like these, by design: RAVEN's
#: nonverbal LSTMs see one frame per word there, so their recurrent weights never act
#: (tests/test_comparators.py checks they get gradients on unaligned input)
UNUSED_WHEN_ALIGNED = {"raven": ("subnetworks.", "rnn.weight_hh_l0")}
#: what a backbone's ``encode`` runs, where it is not called ``encoders``
STAGE1_PARTS = {"raven": ("subnetworks.", "shift.", "word_rnn.")}
TOPDOWN = [m for m in MODELS if isinstance(_small(m), TopDown)]


def test_registry_has_paper_models() -> None:
    assert {"baseline", "mmlatch", "mmlatch-linear"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    model = _small(name).train()
    feats, lens = _batch([5, 3, 4])
    out = model(feats, lens)
    assert out.prediction.shape == (3, 1)
    loss = out.prediction.sum()
    aux = getattr(model, "auxiliary_loss", None)  # part of the training objective (e.g. MCTN's translations)
    if aux is not None:
        # labels on both sides of 0: Self-MM's label generation and MMIM's entropy term
        # split the batch into positive and negative samples
        labels = torch.tensor([[-0.5], [0.5], [1.5]])
        extra = aux(out, labels, torch.nn.functional.l1_loss)
        loss = loss + (extra if extra is not None else 0)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))]
    base = name.removesuffix("-mmlatch")
    if base in UNUSED_WHEN_ALIGNED:
        prefix, suffix = UNUSED_WHEN_ALIGNED[base]
        missing = [n for n in missing if not (prefix in n and n.endswith(suffix))]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("name", MODELS)
def test_padding_never_changes_a_prediction(name: str) -> None:
    model = _small(name).eval()
    feats, lens = _batch([3, 7, 5])
    with torch.no_grad():
        batched = model(feats, lens).prediction
        for i, n in enumerate(lens.tolist()):
            alone = model({k: v[i : i + 1, :n] for k, v in feats.items()}, lens[i : i + 1]).prediction
            # extra padding beyond the batch's longest must not matter either
            padded = model({k: torch.nn.functional.pad(v[i : i + 1], (0, 0, 0, 4)) for k, v in feats.items()}, lens[i : i + 1]).prediction
            assert torch.allclose(batched[i], alone[0], atol=1e-5), (i, batched[i], alone[0])
            assert torch.allclose(padded, alone, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_padding_content_is_ignored(name: str) -> None:
    model = _small(name).eval()
    feats, lens = _batch([2, 6])
    noisy = {k: v.clone() for k, v in feats.items()}
    for v in noisy.values():
        v[0, 2:] = 1e3  # garbage in the padding of sample 0
    with torch.no_grad():
        assert torch.allclose(model(feats, lens).prediction, model(noisy, lens).prediction, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_eval_is_deterministic_and_save_load_round_trips(name: str, tmp_path) -> None:
    model = _small(name).eval()
    feats, lens = _batch([4, 2])
    with torch.no_grad():
        a = model(feats, lens)
        b = model(feats, lens)
    assert torch.equal(a.prediction, b.prediction)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors"))
    torch.manual_seed(123)
    other = create_model(name, DIMS, **{k: v for k, v in SMALL.items() if k in model_arguments(name)}).eval()
    other.load_state_dict(load_file(str(tmp_path / "m.safetensors")))
    with torch.no_grad():
        assert torch.equal(other(feats, lens).prediction, a.prediction)


@pytest.mark.parametrize("name", TOPDOWN)
def test_masks_in_unit_interval_with_input_shapes(name: str) -> None:
    model = _small(name).eval()
    feats, lens = _batch([4, 6])
    with torch.no_grad():
        out = model(feats, lens)
    assert set(out.masks) == set(DIMS)
    for k, m in out.masks.items():
        assert m.shape == feats[k].shape
        assert torch.all((m >= 0) & (m <= 1))
        assert torch.all(m[0, 4:] == 0)  # padded steps


@pytest.mark.parametrize("name", TOPDOWN)
def test_stage1_gradients_follow_the_flag(name: str) -> None:
    feats, lens = _batch([4, 3])
    for flag in (False, True):
        model = _small(name, stage1_grad=flag).train()
        own = STAGE1_PARTS.get(name.removesuffix("-mmlatch"), ())
        enc = [
            p for n, p in model.named_parameters()
            if ".encoders." in n or n.startswith("backbone.encoders") or n.startswith(tuple(f"backbone.{o}" for o in own))
        ]
        assert enc
        masks = model.masks(feats, {k: lens for k in DIMS})
        total = sum(m.sum() for m in masks.values())
        grads = torch.autograd.grad(total, enc, allow_unused=True)
        reached = any(g is not None and torch.any(g != 0) for g in grads)
        assert reached == flag


@pytest.mark.parametrize("dims", [{"text": 6, "audio": 5}, {"text": 6, "audio": 5, "visual": 4, "extra": 3}])
def test_topdown_with_two_and_four_modalities(dims: dict[str, int]) -> None:
    model = _small("mmlatch", dims).train()
    feats, lens = _batch([3, 5], dims)
    out = model(feats, lens)
    assert set(out.masks) == set(dims)
    out.prediction.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_name_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown model 'nope'.*baseline"):
        create_model("nope", DIMS)


def test_unknown_override_is_a_clear_error_and_none_keeps_default() -> None:
    with pytest.raises(TypeError, match="no argument"):
        create_model("baseline", DIMS, hiden=3)
    a = create_model("baseline", DIMS, hidden=None)  # None = keep the preset's default (100)
    assert a.encoders["text"].output_dim == 100


@pytest.mark.parametrize("name", MODELS)
def test_bad_batches_are_clear_errors(name: str) -> None:
    model = _small(name).eval()
    feats, lens = _batch([3, 4])
    wrong_dim = dict(feats, audio=torch.randn(2, 4, 7))
    with pytest.raises(ValueError, match="'audio': has 7 features per step, the model expects 5"):
        model(wrong_dim, lens)
    nan = {k: v.clone() for k, v in feats.items()}
    nan["visual"][1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="'visual': 1 NaN/inf"):
        model(nan, lens)
    with pytest.raises(ValueError, match="modalities"):
        model({"text": feats["text"]}, lens)
    with pytest.raises(ValueError, match="lengths must lie in"):
        model(feats, torch.tensor([0, 4]))
