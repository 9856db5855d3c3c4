"""Models' own logged values reach the epoch log through one interface (no model branch in
the trainer): :func:`logged_values` per batch, :func:`summarise_logged` per epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmlatch.modules.outputs import ModelOutput, logged_values, summarise_logged


def test_gate_values_of_a_batch_and_their_epoch_summary_by_hand() -> None:
    out = ModelOutput(torch.zeros(2, 1), None, {"gate": torch.tensor([[0.2, 0.8], [0.4, 0.6]]), "primary": torch.tensor(1)})
    values = logged_values(out)
    assert torch.allclose(values["gate"], torch.tensor([0.3, 0.7])) and int(values["primary"]) == 1
    second = {"gate": torch.tensor([0.5, 0.5]), "primary": torch.tensor(0)}
    third = {"gate": torch.tensor([0.1, 0.9]), "primary": torch.tensor(1)}
    row = summarise_logged([values, second, third], ["text", "audio"])
    assert row["gate_text"] == pytest.approx(0.3) and row["gate_audio"] == pytest.approx(0.7)
    assert row["primary"] == 1.0 and row["primary_share"] == pytest.approx(2 / 3)
    assert list(row) == ["gate_text", "gate_audio", "primary", "primary_share"]  # the CSV's column order


def test_models_without_extras_log_nothing() -> None:
    assert logged_values(ModelOutput(torch.zeros(2, 1))) == {}
    assert summarise_logged([], ["text"]) == {}


def test_the_training_module_has_no_model_specific_branch() -> None:
    source = (Path(__file__).resolve().parents[1] / "src" / "mmlatch" / "training" / "module.py").read_text()
    for word in ("gate", "primary", "hctmg", "HCTMG", "unimodal"):
        assert word not in source, word
