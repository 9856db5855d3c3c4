"""Unimodal encoders: one per modality, turning raw features into high-level sequences."""

from __future__ import annotations

from torch import Tensor, nn

from mmlatch.modules.attention import SelfAttention
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.masking import length_mask, masked_fill_padding
from mmlatch.modules.rnn import MaskedBiLSTM


class RecurrentEncoder(nn.Module):
    """BiLSTM (directions summed) + dot-product self-attention (paper Sec. 2, step 1).

    Args:
        input_dim: F_k, the modality's feature size.
        hidden: d, LSTM hidden size per direction and output size.
        dropout: dropout on the output representation.
        attn_dropout: dropout on the self-attention weights.
        rnn_dropout: dropout on the BiLSTM outputs, per direction, before they are summed.
        released_padding: the released code's padded steps (``padding: released``): the
            BiLSTM outputs are zero there, so each padded step's self-attention output is the
            mean of the values over the real steps, and it is kept (not zeroed).
    """

    def __init__(
        self,
        input_dim: int,
        hidden: int = 100,
        dropout: float = 0.2,
        attn_dropout: float = 0.1,
        rnn_dropout: float = 0.0,
        released_padding: bool = False,
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = hidden
        self.rnn = MaskedBiLSTM(input_dim, hidden, merge="sum", dropout=rnn_dropout)
        self.attention = SelfAttention(hidden, dropout=attn_dropout)
        self.dropout = Dropout(dropout)
        self.released_padding = released_padding

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F_k), lengths: (B,) -> r_k: (B, L, d), zero at padded steps (unless
        ``released_padding``)."""
        mask = length_mask(lengths, x.size(1))
        h = self.rnn(x, lengths)
        if self.released_padding:
            return self.dropout(self.attention(masked_fill_padding(h, mask), mask))
        r = self.attention(h, mask)
        return masked_fill_padding(self.dropout(r), mask)
