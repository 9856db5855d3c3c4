"""Read-outs of the fused sequence: (B, L, D) -> one vector per sample for the head."""

from __future__ import annotations

from torch import Tensor, nn

from mmlatch.modules.attention import AttentionSum
from mmlatch.modules.masking import length_mask
from mmlatch.modules.rnn import MaskedBiLSTM


class AttentiveSumReadout(nn.Module):
    """The authors' tail: BiLSTM (directions concatenated) -> self-attention -> sum over steps.

    Args:
        input_dim: D, the fused feature size (7d for three modalities).
        hidden: H per LSTM direction; the output has 2H values.
        dropout: dropout on the BiLSTM outputs and on the attention weights (0.1 in the
            authors' code).
        released_padding: padded steps count in the sum, as in the released code
            (:class:`AttentionSum`).
    """

    def __init__(self, input_dim: int, hidden: int, dropout: float = 0.1, released_padding: bool = False) -> None:
        super().__init__()
        self.rnn = MaskedBiLSTM(input_dim, hidden, merge="concat", dropout=dropout)
        self.pool = AttentionSum(2 * hidden, dropout=dropout, released_padding=released_padding)
        self.output_dim = 2 * hidden

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, D), lengths: (B,) -> (B, 2H); padded steps never count."""
        return self.pool(self.rnn(x, lengths), length_mask(lengths, x.size(1)))


class LastStateReadout(nn.Module):
    """The paper's tail: BiLSTM (directions summed), its last hidden state.

    The forward direction's state at the last real step plus the backward direction's state
    at the first step (paper Sec. 2: "the last hidden state is used for regression").

    Args:
        input_dim: D, the fused feature size.
        hidden: H, LSTM size per direction and output size.
    """

    def __init__(self, input_dim: int, hidden: int) -> None:
        super().__init__()
        self.rnn = MaskedBiLSTM(input_dim, hidden, merge="sum")
        self.output_dim = hidden

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, D), lengths: (B,) -> (B, H)."""
        return self.rnn.last_hidden(x, lengths)
