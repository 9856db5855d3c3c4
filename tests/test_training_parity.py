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
