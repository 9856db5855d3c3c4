"""Feedback generators: a modality's high-level representation -> a sigmoid mask."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlatch.modules.dropout import Dropout
from mmlatch.modules.rnn import lower_precision, lstm_packed, packed_steps, use_chunks


class LSTMFeedback(nn.Module):
    """Unidirectional LSTM whose hidden state, through a sigmoid, is the mask (paper Sec. 2.7).

    Its hidden size is the masked modality's feature size, as in the authors' code. Being
    causal, it never reads end padding; on CPU it runs in time chunks that skip most of it
    (:func:`mmlatch.modules.rnn.lstm_packed`).

    Args:
        input_dim: size of the source representation r_j.
        output_dim: F_k, feature size of the modality to mask.
        gate_bias: added to the input- and output-gate biases at initialisation. With
            PyTorch's default init both gates start near 0.5, so h = o * tanh(c) starts near
            0 and the mask near 0.5 with a tiny spread; open gates let it vary from the start.
        dropout: dropout on the LSTM outputs before the sigmoid (training only; the
            authors' code uses 0.1).
    """

    def __init__(
        self, input_dim: int, output_dim: int, gate_bias: float = 0.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_dim, output_dim)  # time-major, as the chunked pass runs it
        self.dropout = Dropout(dropout)
        if gate_bias:
            with torch.no_grad():  # PyTorch's gate order: input, forget, cell, output
                self.rnn.bias_ih_l0[:output_dim] += gate_bias
                self.rnn.bias_ih_l0[3 * output_dim :] += gate_bias

    def forward(self, r: Tensor, lengths: Tensor) -> Tensor:
        """r: (B, L, d_j), lengths: (B,) -> (B, L, F_k) in (0, 1)."""
        if use_chunks(r):
            h = lstm_packed(self.rnn, lower_precision(r), packed_steps(lengths, r.size(1)), "f")
        else:
            h = self.rnn(r.transpose(0, 1))[0].transpose(0, 1)
        return torch.sigmoid(self.dropout(h))


class LinearFeedback(nn.Module):
    """One feed-forward layer + sigmoid per step: the "MMLatch (no LSTM)" ablation
    (the authors' ``learnable_static_mask``, which has no dropout)."""

    def __init__(
        self, input_dim: int, output_dim: int, gate_bias: float = 0.0, dropout: float = 0.0
    ) -> None:
        super().__init__()  # gate_bias, dropout: a uniform signature; neither applies here
        self.proj = nn.Linear(input_dim, output_dim)

    def forward(self, r: Tensor, lengths: Tensor) -> Tensor:
        """r: (B, L, d_j), lengths: (B,) -> (B, L, F_k) in (0, 1)."""
        return torch.sigmoid(self.proj(r))


FEEDBACK_TYPES: dict[str, type[nn.Module]] = {"lstm": LSTMFeedback, "linear": LinearFeedback}


def build_feedback(
    kind: str,
    representation_dims: dict[str, int],
    modality_dims: dict[str, int],
    gate_bias: float = 0.0,
    dropout: float = 0.0,
) -> nn.ModuleDict:
    """One generator per ordered pair (source j -> target k), keyed ``"j__k"``.

    Args:
        kind: ``lstm`` or ``linear``.
        representation_dims: d_j of each source's high-level representation.
        modality_dims: F_k of each target's raw input.
        gate_bias: initial gate-bias offset of LSTM generators (see :class:`LSTMFeedback`).
        dropout: dropout on LSTM generators' outputs (see :class:`LSTMFeedback`).
    """
    if kind not in FEEDBACK_TYPES:
        raise ValueError(f"unknown feedback {kind!r}; choose from {sorted(FEEDBACK_TYPES)}")
    cls = FEEDBACK_TYPES[kind]
    return nn.ModuleDict(
        {
            f"{j}__{k}": cls(representation_dims[j], modality_dims[k], gate_bias=gate_bias, dropout=dropout)
            for k in modality_dims
            for j in modality_dims
            if j != k
        }
    )
