"""Thread choice, precision, compile and pinned batches (no timing is asserted here)."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mmlatch.cli.main import app
from mmlatch.training.threads import choose_threads
from tiny import tiny_settings

runner = CliRunner()
TINY = tiny_settings(n_train=32, max_len=8, threads=None)


# --- thread choice: a pure function of cores, load, request and environment ---------------

@pytest.mark.parametrize(
    ("cores", "load", "jobs", "expected"),
    [
        (8, 0.0, 1, 8),   # idle machine: every core
        (8, 2.6, 1, 5),   # 8 - 2.6 = 5.4 -> 5
        (8, 2.5, 1, 6),   # 5.5 rounds to even: 6
        (8, 3.0, 2, 2),   # 5 free between 2 runs: 2 each
        (2, 21.0, 1, 1),  # overloaded: at least 1
        (2, 0.0, 4, 1),   # more jobs than cores: 1 each
        (4, -1.0, 1, 4),  # a nonsense negative load counts as 0, never above the cores
    ],
)
def test_auto_threads_are_the_free_cores_split_between_jobs(cores, load, jobs, expected) -> None:
    choice = choose_threads(cores, load, env={}, jobs=jobs)
    assert (choice.threads, choice.source) == (expected, "auto")


def test_omp_num_threads_wins_then_the_request_then_mmlatch_threads() -> None:
    env = {"OMP_NUM_THREADS": "3", "MMLATCH_THREADS": "5"}
    assert choose_threads(8, 0.0, requested=2, env=env).threads == 3
    assert choose_threads(8, 0.0, requested=2, env=env).source == "OMP_NUM_THREADS"
    assert choose_threads(8, 0.0, requested=2, env={"MMLATCH_THREADS": "5"}).threads == 2
    choice = choose_threads(8, 7.0, env={"MMLATCH_THREADS": "5", "OMP_NUM_THREADS": ""})
    assert (choice.threads, choice.source) == (5, "MMLATCH_THREADS")  # an empty OMP_NUM_THREADS is unset


@pytest.mark.parametrize("env", [{"MMLATCH_THREADS": "0"}, {"MMLATCH_THREADS": "two"}, {"OMP_NUM_THREADS": "-1"}])
def test_a_bad_thread_variable_is_an_error_naming_it(env) -> None:
    with pytest.raises(ValueError, match=next(iter(env))):
        choose_threads(4, 0.0, env=env)


def test_a_bad_mmlatch_threads_fails_before_the_run_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MMLATCH_THREADS", "many")
    res = runner.invoke(app, ["train", "--data", "synthetic", "--epochs", "1", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "MMLATCH_THREADS='many'" in res.output and not (tmp_path / "r").exists()


# --- precision, compile, pinned memory ------------------------------------------------------

def _train(out: Path, *extra: str) -> dict:
    args = ["train", "--data", "synthetic", "--model", "baseline", "--epochs", "1", "--out", str(out), "--no-progress"]
    for item in TINY:
        args += ["--set", item]
    res = runner.invoke(app, [*args, *extra])
    assert res.exit_code == 0, res.output
    return json.loads((out / "metrics.json").read_text())


def test_bf16_mixed_trains_a_tiny_run_and_records_the_threads(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        metrics = _train(tmp_path / "r", "--precision", "bf16-mixed", "--threads", "1")
    finally:
        torch.set_num_threads(before)
    assert metrics["epochs_run"] == 1 and all(v == v for v in metrics["test"].values() if v is not None)
    env = json.loads((tmp_path / "r" / "environment.json").read_text())
    assert env["torch_threads"] == 1
    assert env["threads"]["threads"] == 1 and env["threads"]["source"] == "requested"
    assert env["threads"]["allocator"] == _expected_allocator()
    assert "precision: bf16-mixed" in (tmp_path / "r" / "config.yaml").read_text()


def _expected_allocator() -> str:
    return "kept" if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc" else "system"


def test_the_allocator_keeps_freed_memory_on_glibc_unless_told_not_to() -> None:
    from mmlatch.training.allocator import configure_allocator

    assert configure_allocator({}) == _expected_allocator()
    assert configure_allocator({"MMLATCH_MALLOC": "system"}) == "system"
    with pytest.raises(ValueError, match="MMLATCH_MALLOC must be 'kept' or 'system', got 'fast'"):
        configure_allocator({"MMLATCH_MALLOC": "fast"})


def test_unknown_precision_lists_the_choices(tmp_path) -> None:
    res = runner.invoke(app, ["train", "--data", "synthetic", "--precision", "8", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "precision" in res.output and "auto, 32, bf16-mixed, 16-mixed" in res.output
    assert not (tmp_path / "r").exists()


def test_16_mixed_on_cpu_is_refused_before_the_run_directory(tmp_path) -> None:
    res = runner.invoke(app, ["train", "--data", "synthetic", "--precision", "16-mixed", "--device", "cpu",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "16-mixed needs a CUDA device" in res.output
    assert not (tmp_path / "r").exists()


def test_compile_flag_compiles_the_model_in_place(tmp_path, monkeypatch) -> None:
    """Wiring only (compiling on this CPU would take minutes): torch.compile is called on the
    model's call, and the run's files do not change names (no ``_orig_mod.`` prefix)."""
    calls = []

    def fake_compile(fn, *args, **kwargs):
        calls.append(fn)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    _train(tmp_path / "r", "--compile", "--threads", "1")
    assert len(calls) == 1 and getattr(calls[0], "__self__", None) is not None  # a bound _call_impl
    from safetensors.torch import load_file

    assert not any("_orig_mod" in k for k in load_file(str(tmp_path / "r" / "model.safetensors")))
    assert "compile: true" in (tmp_path / "r" / "config.yaml").read_text()


def test_a_pinned_batch_holds_the_same_values(monkeypatch) -> None:
    from mmlatch.data.batching import Batch

    b = Batch({"t": torch.arange(6.0).view(1, 3, 2)}, {"t": torch.tensor([3])}, torch.tensor([[1.0]]), ["a"])
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self.clone())  # no CUDA here
    p = b.pin_memory()
    assert torch.equal(p.features["t"], b.features["t"]) and p.ids == ["a"]
    assert torch.equal(p.lengths["t"], b.lengths["t"]) and torch.equal(p.labels, b.labels)


# --- attention: the explicit training path is the fused one's mathematics -------------------

def test_attention_with_dropout_is_the_fused_attention_when_dropout_drops_nothing(monkeypatch) -> None:
    """Training with dropout takes explicit products; with dropout made the identity it must
    give what the fused attention gives (eval mode), padded keys included."""
    import mmlatch.modules.transformer as T
    from mmlatch.modules.transformer import MultiHeadAttention, TransformerEncoder

    torch.manual_seed(0)
    attn = MultiHeadAttention(12, 3, dropout=0.4)
    enc = TransformerEncoder(12, 3, 1, causal=True)
    mask = enc.attention_mask(5, torch.tensor([4, 2]), 6)  # (2, 1, 5, 6): key padding + causal
    q, kv = torch.randn(2, 5, 12), torch.randn(2, 6, 12)
    expected = attn.eval()(q, kv, mask)
    monkeypatch.setattr(T, "dropout", lambda w, p, training: w)
    monkeypatch.setattr(T, "keep_scale", lambda shape, p, dtype: torch.ones(shape, dtype=dtype))  # the CPU path's
    got = attn.train()(q, kv, mask)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(attn.train()(q, q, mask[:, :, :, :5]), attn.eval()(q, q, mask[:, :, :, :5]), atol=1e-6)


@pytest.mark.parametrize("precision", ["32", "bf16"])
@pytest.mark.parametrize("cross", [False, True])
def test_cpu_attention_products_give_the_plain_products_values_and_gradients(precision: str, cross: bool) -> None:
    """The CPU path (transposed products, own backward, padded keys under bf16) against the
    plain products: same outputs and gradients (float rounding), the same dropout draws,
    key padding and a causal mask included."""
    from mmlatch.modules.transformer import MultiHeadAttention, TransformerEncoder

    torch.manual_seed(0)
    attn = MultiHeadAttention(30, 5, dropout=0.3).train()
    x = torch.randn(3, 7, 30, requires_grad=True)
    kv = torch.randn(3, 9, 30, requires_grad=True) if cross else x
    enc = TransformerEncoder(30, 5, 1, causal=True)
    mask = enc.attention_mask(7, torch.tensor([9, 4, 2]) if cross else torch.tensor([7, 4, 2]), kv.size(1))
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    results = []
    for fast in (True, False):
        attn.cpu_products = fast
        torch.manual_seed(1)
        with amp:
            out = attn(x, kv, mask)
        inputs = [x, kv] if cross else [x]
        weight = torch.linspace(-1, 1, 30)  # a loss that is not shift-invariant per head
        grads = torch.autograd.grad((out.float() * weight).square().sum(), inputs + list(attn.parameters()))
        results.append((out.float(), grads))
    (out_fast, g_fast), (out_plain, g_plain) = results
    assert torch.isfinite(out_fast).all()
    tol = 1e-5 if precision == "32" else 2e-2
    assert torch.allclose(out_fast, out_plain, rtol=tol, atol=tol)
    for a, b in zip(g_fast, g_plain):
        assert torch.allclose(a.float(), b.float(), rtol=tol, atol=tol * max(1.0, b.abs().max().item()))


def test_attention_dropout_drops_weights_in_training_only() -> None:
    from mmlatch.modules.transformer import MultiHeadAttention

    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(1, 4, 8)
    mask = torch.ones(1, 1, 1, 4, dtype=torch.bool)
    assert torch.equal(attn.eval()(x, x, mask), attn.eval()(x, x, mask))
    assert not torch.allclose(attn.train()(x, x, mask), attn.eval()(x, x, mask))


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest() -> None:
    from mmlatch.modules.transformer import Dropout, dropout

    torch.manual_seed(0)
    x = torch.full((200_000,), 2.0, requires_grad=True)
    y = dropout(x, 0.25, training=True)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.25) < 0.005  # 3 sigma is 0.003
    assert torch.allclose(y[kept], torch.tensor(2.0 / 0.75))
    y.sum().backward()  # the gradient is the same mask: 1/(1-p) where kept, 0 where dropped
    assert torch.allclose(x.grad, kept.float() / 0.75)
    assert dropout(x, 0.25, training=False) is x and dropout(x, 0.0, training=True) is x
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))
    assert Dropout(0.5).eval()(x) is x
    # p = 0.1 drops 6554 of the 2**16 bit patterns: survivors scaled by 2**16 / (2**16 - 6554)
    scaled = dropout(torch.ones(1000), 0.1, training=True)
    assert torch.allclose(scaled[scaled != 0], torch.tensor(65536 / 58982))
    assert torch.equal(dropout(torch.ones(9), 1e-6, training=True), torch.ones(9))  # below 2**-17: no drop
    odd = torch.ones(3, 5, 7)  # a count not a multiple of 4: part of a 64-bit draw goes unused
    torch.manual_seed(1)
    first = dropout(odd, 0.5, training=True)
    torch.manual_seed(1)
    assert first.shape == odd.shape and torch.equal(first, dropout(odd, 0.5, training=True))  # seeded
    assert set(first.unique().tolist()) <= {0.0, 2.0}
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        Dropout(1.5)
