"""EF-LSTM: the early-fusion LSTM baseline (features concatenated per step, one LSTM)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model
from mmlatch.modules.checks import check_aligned, check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.subnets import fill_output_bias, last_linear, need_modalities
from mmlatch.modules.transformer import last_real_step


class EarlyFusionLSTM(nn.Module):
    """Concatenate the modalities' features at every step, run a stacked unidirectional LSTM,
    read its top layer at the last REAL step, dropout, a ReLU layer, dropout, the output layer.

    Needs word-aligned input (one step per word in every modality). Unlike MMSA's EF_LSTM,
    no BatchNorm runs over the time axis (it mixes padded steps into the statistics; use the
    training split's standardisation instead), and the final state is the last real step's,
    not the padded sequence's end.

    Args:
        modality_dims: modality -> F_k, in concatenation order.
        rnn: ``nn.LSTM(sum F_k, H, num_layers, batch_first=True)``.
        head: ``(B, H) -> (B, num_outputs)``.
        dropout: dropout on the final state.
    """

    def __init__(self, modality_dims: dict[str, int], rnn: nn.LSTM, head: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        if rnn.input_size != sum(modality_dims.values()) or not rnn.batch_first or rnn.bidirectional:
            raise ValueError("ef-lstm: the LSTM must be unidirectional, batch_first, over the concatenated features")
        self.modality_dims = dict(modality_dims)
        self.rnn = rnn
        self.dropout = Dropout(dropout)
        self.head = head
        self.check_finite = True

    def init_output_bias(self, mean: Tensor) -> None:
        """Start every prediction at ``mean`` (num_outputs,), the training labels' mean."""
        fill_output_bias(last_linear(self.head).bias, mean)

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L, F_k); lengths: (B,) or per modality -> ModelOutput."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        check_aligned(lengths, features, "ef-lstm")
        x = torch.cat([features[k] for k in self.modality_dims], dim=2)  # (B, L, sum F_k)
        out, _ = self.rnn(x)  # (B, L, H); unidirectional: step len-1 never read the padding
        last = last_real_step(out, lengths[next(iter(self.modality_dims))])
        return ModelOutput(self.head(self.dropout(last)))


@register_model("ef-lstm", "EF-LSTM: per-step concatenation of the modalities, stacked LSTM (early-fusion baseline)")
def ef_lstm(
    modality_dims: dict[str, int],
    *,
    hidden: int = 128,
    layers: int = 4,
    dropout: float = 0.5,
    num_outputs: int = 1,
) -> EarlyFusionLSTM:
    """EF-LSTM; ``dropout`` between LSTM layers, on the final state and after the ReLU layer.
    Defaults: MMSA 2.2.1's published MOSI setting (configs/zoo/ef-lstm.yaml)."""
    need_modalities("ef-lstm", modality_dims)
    if layers < 1:
        raise ValueError(f"ef-lstm: layers must be >= 1, got {layers}")
    rnn = nn.LSTM(sum(modality_dims.values()), hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True)
    head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), Dropout(dropout), nn.Linear(hidden, num_outputs))
    return EarlyFusionLSTM(modality_dims, rnn, head, dropout)
