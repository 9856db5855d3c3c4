"""``padding: released`` (issue 22): the released code's padded steps, which is what makes the
released model train as its authors' loop trains it (README "Training parity")."""

from __future__ import annotations

import pytest
import torch

from mmlatch.models import create_model
from mmlatch.modules import AttentiveSumReadout, RecurrentEncoder
from mmlatch.modules.attention import AttentionSum

DIMS = {"text": 6, "audio": 5, "visual": 4}


def test_released_sum_adds_the_mean_value_once_per_padded_step() -> None:
    """Sum over real steps + (L - len) x the mean of V over the real steps (zero queries)."""
    torch.manual_seed(0)
    pool = AttentionSum(3, dropout=0.0, released_padding=True)
    masked = AttentionSum(3, dropout=0.0)
    masked.load_state_dict(pool.state_dict())
    x = torch.randn(1, 5, 3)
    x[0, 2:] = 7.0  # padding content must not matter
    mask = torch.tensor([[True, True, False, False, False]])
    with torch.no_grad():
        real = masked(x, mask)  # sum over the 2 real steps
        v_mean = pool.v(x[0, :2]).mean(dim=0)
        assert torch.allclose(pool(x, mask), real + 3 * v_mean, atol=1e-5)


def test_released_encoder_keeps_the_mean_value_at_padded_steps() -> None:
    torch.manual_seed(0)
    enc = RecurrentEncoder(4, 3, dropout=0.0, attn_dropout=0.0, released_padding=True).eval()
    x = torch.randn(2, 5, 4)
    lens = torch.tensor([5, 2])
    with torch.no_grad():
        out = enc(x, lens)
        h = enc.rnn(x[1:, :2], lens[1:])[0]  # (2, 3): the real steps' BiLSTM outputs
        assert torch.allclose(out[1, 2:], enc.attention.v(h).mean(dim=0).expand(3, 3), atol=1e-6)
        assert torch.allclose(out[1, :2], enc(x[1:, :2], lens[1:])[0], atol=1e-6)  # real steps as alone


@pytest.mark.parametrize("name", ["baseline", "mmlatch"])
def test_released_padding_changes_only_padded_batches(name: str) -> None:
    """Same weights: full-length batches give the same predictions with either setting; on a
    padded batch only ``released`` depends on the padding (as the released code does)."""
    torch.manual_seed(0)
    masked = create_model(name, DIMS, variant="authors", padding="masked").eval()
    released = create_model(name, DIMS, variant="authors").eval()  # the authors variant's default
    released.load_state_dict(masked.state_dict())
    x = {k: torch.randn(3, 6, f) for k, f in DIMS.items()}
    full = torch.tensor([6, 6, 6])
    lens = torch.tensor([6, 4, 2])
    with torch.no_grad():
        assert torch.allclose(masked(x, full).prediction, released(x, full).prediction, atol=1e-6)
        alone = masked({k: v[2:, :2] for k, v in x.items()}, lens[2:]).prediction
        assert torch.allclose(released({k: v[2:, :2] for k, v in x.items()}, lens[2:]).prediction, alone, atol=1e-6)
        assert torch.allclose(masked(x, lens).prediction[2], alone[0], atol=1e-5)
        assert (released(x, lens).prediction[2] - alone[0]).abs().item() > 1e-3


@pytest.mark.parametrize("name", ["baseline", "mmlatch"])
def test_padding_defaults_follow_the_variant(name: str) -> None:
    """authors: the released padding unless ``padding=masked``; paper: always masked."""

    def released(net: torch.nn.Module) -> bool:
        net = getattr(net, "backbone", net)
        return net.released_padding and all(e.released_padding for e in net.encoders.values())

    assert released(create_model(name, DIMS, variant="authors"))
    assert released(create_model(name, DIMS, variant="authors", padding="released"))
    assert not released(create_model(name, DIMS, variant="authors", padding="masked"))
    paper = create_model(name, DIMS)
    assert not getattr(paper, "backbone", paper).released_padding


def test_released_padding_needs_the_authors_variant() -> None:
    with pytest.raises(ValueError, match="variant authors"):
        create_model("baseline", DIMS, variant="paper", padding="released")
    with pytest.raises(ValueError, match="padding must be one of"):
        create_model("baseline", DIMS, variant="authors", padding="front")


def test_readout_option_is_passed_through() -> None:
    assert AttentiveSumReadout(4, 2, released_padding=True).pool.released_padding


# ------------------------------------------------------------- MulT's public-code choices


def test_shared_kv_norm_is_the_query_norm_on_both_streams() -> None:
    """``kv_norm: shared``: one LayerNorm for target and source (MulT's public code); with
    that norm copied into an ``own`` layer's second one the outputs are the same."""
    from mmlatch.modules.transformer import TransformerLayer

    torch.manual_seed(0)
    shared = TransformerLayer(6, 2, cross=True, kv_norm="shared").eval()
    own = TransformerLayer(6, 2, cross=True).eval()
    with torch.no_grad():
        shared.norm_q.weight.uniform_(0.5, 1.5)
        shared.norm_q.bias.uniform_(-0.5, 0.5)
    state = shared.state_dict()
    state.update({k.replace("norm_q", "norm_kv"): v for k, v in state.items() if k.startswith("norm_q")})
    own.load_state_dict(state)
    assert shared.norm_kv is None
    x, kv = torch.randn(2, 4, 6), torch.randn(2, 5, 6)
    mask = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    with torch.no_grad():
        assert torch.allclose(shared(x, mask, kv), own(x, mask, kv), atol=1e-6)
        own.norm_kv.bias.add_(1.0)  # an own norm is a separate parameter
        assert not torch.allclose(shared(x, mask, kv), own(x, mask, kv), atol=1e-3)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(own) - n(shared) == 2 * 6
    with pytest.raises(ValueError, match="kv_norm must be one of own, shared"):
        TransformerLayer(6, 2, cross=True, kv_norm="mine")


def test_xavier_init_is_the_public_codes() -> None:
    """``init: xavier``: zero biases, q/k/v from one (3d, d) Xavier matrix (bound
    sqrt(6 / 4d)), out and feed-forward (d, d) / (4d, d) Xavier; LayerNorms 1 / 0."""
    from mmlatch.modules.transformer import TransformerEncoder

    torch.manual_seed(0)
    d = 30
    enc = TransformerEncoder(d, 5, 2, cross=True, init="xavier")
    for layer in enc.layers:
        a = layer.attn
        for lin in (a.q, a.k, a.v, a.out, layer.fc1, layer.fc2):
            assert torch.all(lin.bias == 0)
        qkv = torch.cat([a.q.weight, a.k.weight, a.v.weight])
        bound = (6 / (4 * d)) ** 0.5
        assert qkv.abs().max() <= bound and qkv.abs().max() > 0.95 * bound
        assert layer.fc1.weight.abs().max() <= (6 / (5 * d)) ** 0.5
        assert a.out.weight.abs().max() > (6 / (2 * d)) ** 0.5 * 0.95  # its own, wider bound
        assert torch.all(layer.norm_q.weight == 1) and torch.all(layer.norm_q.bias == 0)
    with pytest.raises(ValueError, match="init must be one of torch, xavier"):
        TransformerEncoder(d, 5, 1, init="he")


def test_mult_options_reach_every_crossmodal_layer() -> None:
    net = create_model("mult", DIMS, hidden=10, layers=2, heads=2, kv_norm="shared", init="xavier")
    layers = [layer for stacks in net.encoders.values() for enc in stacks.values() for layer in enc.layers]
    assert len(layers) == 12 and all(layer.norm_kv is None for layer in layers)
    assert all(torch.all(layer.fc1.bias == 0) for layer in layers)
    default = create_model("mult", DIMS, hidden=10, layers=2, heads=2)
    assert all(layer.norm_kv is not None for s in default.encoders.values() for e in s.values() for layer in e.layers)
