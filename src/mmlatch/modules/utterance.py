"""Utterance encoders of the pretrained-text models (MISA, Self-MM, MMIM): one vector per
sample and modality, padding never read.

The three papers encode text with BERT-base (fine-tuned) and audio/visual with LSTMs. Here
the text side reads the dataset's per-word text features (:class:`TextUtterance`):

* ``text_encoder="frozen"`` (default): the masked mean over the real words. With the
  contextual features of ``mmlatch extract --embeddings all-minilm-l6-v2`` (all-MiniLM-L6-v2's last
  layer, word pieces averaged per word) this is the frozen encoder's sentence embedding
  (MiniLM's own pooling is the mean over its pieces; here pieces are first averaged per
  word), and every layer after it is trained.
* ``text_encoder="lstm"``: a BiLSTM over the word vectors, both final states concatenated
  (MISA's non-BERT text path), for non-contextual vectors such as GloVe.
* ``text_encoder="finetune"``: the packaged all-MiniLM-L6-v2 (or a local BERT folder) runs
  inside the model on each sample's raw text and is trained with it
  (:class:`~mmlatch.modules.pretrained_text.PretrainedText`); the data must carry the texts.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from mmlatch.modules.dropout import Dropout
from mmlatch.modules.rnn import MaskedBiLSTM
from mmlatch.modules.transformer import last_real_step, masked_mean

TEXT_ENCODERS = ("frozen", "lstm", "finetune")


class TextUtterance(nn.Module):
    """Text (B, L, F) -> one vector (B, output_dim).

    Args:
        input_dim: F.
        encoder: ``frozen`` (masked mean; output F) or ``lstm`` (BiLSTM of ``hidden`` per
            direction, final states concatenated; output 2 * hidden).
        hidden: the BiLSTM's size (``lstm`` only).
    """

    def __init__(self, input_dim: int, encoder: str = "frozen", hidden: int = 128) -> None:
        super().__init__()
        if encoder not in TEXT_ENCODERS:
            raise ValueError(f"text_encoder must be one of {list(TEXT_ENCODERS)}, got {encoder!r}")
        if encoder == "finetune":
            raise ValueError("TextUtterance reads per-word features; text_encoder 'finetune' is built by text_utterance")
        self.input_dim = input_dim
        self.encoder = encoder
        self.rnn = MaskedBiLSTM(input_dim, hidden, merge="concat") if encoder == "lstm" else None
        self.output_dim = 2 * hidden if self.rnn is not None else input_dim

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F), lengths: (B,) -> (B, output_dim)."""
        if self.rnn is None:
            return masked_mean(x, lengths)
        return self.rnn.last_hidden(x, lengths)


def text_utterance(
    input_dim: int,
    encoder: str,
    hidden: int,
    *,
    pooling: str,
    model: str | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    max_tokens: int | None = None,
) -> nn.Module:
    """The text encoder ``encoder`` names: :class:`TextUtterance` (``frozen``, ``lstm``) or,
    for ``finetune``, :class:`~mmlatch.modules.pretrained_text.PretrainedText` over the BERT
    of folder ``model`` (None: the packaged all-MiniLM-L6-v2) with ``pooling``, ``lr``,
    ``weight_decay`` and ``max_tokens``."""
    if encoder != "finetune":
        return TextUtterance(input_dim, encoder, hidden)
    from mmlatch.modules.pretrained_text import PretrainedText, load_bert

    tokenizer, bert = load_bert(model)
    return PretrainedText(input_dim, tokenizer, bert, pooling, lr, weight_decay, max_tokens)


def encode_utterances(
    encoders: nn.ModuleDict, features: dict[str, Tensor], lengths: dict[str, Tensor], texts: Sequence[str] | None
) -> dict[str, Tensor]:
    """modality -> (B, e_k): every encoder on its modality; the raw ``texts`` go to the
    encoders that read them."""
    return {
        k: enc(features[k], lengths[k], texts) if getattr(enc, "reads_text", False) else enc(features[k], lengths[k])
        for k, enc in encoders.items()
    }


class LastStateLSTM(nn.Module):
    """A one-layer LSTM's final hidden state(s), dropout, a linear layer (Self-MM's
    ``AuViSubNet``, MMIM's ``RNNEncoder``), exact under padding without packed sequences.

    Args:
        input_dim: F.
        hidden: H per direction.
        output_dim: the linear layer's output size.
        bidirectional: both directions' final states concatenated (MMIM) or the forward
            one only (Self-MM).
        dropout: dropout on the final state.
    """

    def __init__(
        self, input_dim: int, hidden: int, output_dim: int, bidirectional: bool = False, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = output_dim
        if bidirectional:
            self.rnn: nn.Module = MaskedBiLSTM(input_dim, hidden, merge="concat")
        else:
            self.rnn = nn.LSTM(input_dim, hidden, batch_first=True)
        self.bidirectional = bidirectional
        self.dropout = Dropout(dropout)
        self.linear = nn.Linear((2 if bidirectional else 1) * hidden, output_dim)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F), lengths: (B,) -> (B, output_dim)."""
        if self.bidirectional:
            h = self.rnn.last_hidden(x, lengths)  # type: ignore[operator]
        else:
            out, _ = self.rnn(x)  # unidirectional: step len-1 never read the padding
            h = last_real_step(out, lengths)
        return self.linear(self.dropout(h))


def role(name: str) -> str:
    """Which of a paper's three size groups a modality takes: ``text``, ``audio`` or
    ``visual`` (any other modality)."""
    return name if name in ("text", "audio") else "visual"
