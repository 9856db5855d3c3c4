"""RAVEN (Wang et al., AAAI 2019, "Words Can Shift"), a Table 1 comparator, and RAVEN + MMLatch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model, register_topdown
from mmlatch.modules.checks import check_inputs, is_exporting, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.masking import length_mask, masked_fill_padding
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.transformer import last_real_step


def word_chunks(num_words: Tensor, num_frames: Tensor, max_words: int) -> tuple[Tensor, Tensor]:
    """The frames of each word when a nonverbal sequence is split into equal chunks.

    Word i of a sample with n words and m frames covers frames ``[floor(i m / n),
    floor((i + 1) m / n))``; a chunk that would be empty (m < n) gets the one frame
    ``min(floor(i m / n), m - 1)``. On word-aligned input (m = n) word i is frame i.
    Padded words (i >= n) get frame 0 (their outputs are masked later).

    Args:
        num_words: (B,) real words n.
        num_frames: (B,) real frames m of the nonverbal modality.
        max_words: L, the padded word length.
    Returns:
        start (B, L) first frame of each word and size (B, L) >= 1 frames in it.
    """
    i = torch.arange(max_words, device=num_words.device).unsqueeze(0)  # (1, L)
    n = num_words.unsqueeze(1).clamp(min=1)  # (B, 1)
    m = num_frames.to(num_words.device).unsqueeze(1)  # (B, 1)
    start = torch.div(i * m, n, rounding_mode="floor")
    end = torch.div((i + 1) * m, n, rounding_mode="floor")
    start = torch.minimum(start, m - 1)
    size = (end - start).clamp(min=1)
    real = i < n
    return start.masked_fill(~real, 0), size.masked_fill(~real, 1)


class NonverbalSubnetwork(nn.Module):
    """An LSTM over the frames inside each word; its state after the word's last frame.

    Args:
        input_dim: F_k, the nonverbal modality's feature size.
        hidden: its hidden size.
    """

    def __init__(self, input_dim: int, hidden: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = hidden
        self.rnn = nn.LSTM(input_dim, hidden, batch_first=True)

    def forward(self, frames: Tensor, num_frames: Tensor, num_words: Tensor, max_words: int) -> Tensor:
        """frames: (B, M, F_k), num_frames, num_words: (B,) -> (B, L, hidden), zero at padded words."""
        start, size = word_chunks(num_words, num_frames, max_words)  # (B, L) each
        batch = frames.size(0)
        width = int(size.max()) if size.numel() else 1  # frames of the longest word in the batch
        offsets = torch.arange(width, device=frames.device)  # (C,)
        idx = (start.unsqueeze(2) + offsets).clamp(max=frames.size(1) - 1)  # (B, L, C)
        rows = torch.arange(batch, device=frames.device).view(batch, 1, 1)
        chunks = frames[rows, idx]  # (B, L, C, F_k)
        out, _ = self.rnn(chunks.reshape(batch * max_words, width, -1))  # (B*L, C, H)
        # unidirectional: the state after frame size-1 never read the chunk's padding
        h = last_real_step(out, size.reshape(-1)).view(batch, max_words, -1)  # (B, L, H)
        return masked_fill_padding(h, length_mask(num_words, max_words))


class GatedShift(nn.Module):
    """The gated modality-mixing network and the multimodal shift.

    For each nonverbal modality k a scalar gate ``w_k = sigmoid(W_k [h_k; e] + b_k)`` and the
    shift vector ``h = sum_k w_k (U_k h_k) + b_h`` (size of e); the shifted word is
    ``e' = e + alpha h`` with ``alpha = min(beta ||e||_2 / ||h||_2, 1)``, so the shift's norm is
    at most ``beta ||e||``.

    Args:
        word_dim: F_w, the word representation size.
        nonverbal_dims: nonverbal modality -> size of its subnetwork state h_k.
        beta: the threshold hyperparameter.
    """

    def __init__(self, word_dim: int, nonverbal_dims: dict[str, int], beta: float) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.beta = beta
        self.gates = nn.ModuleDict({k: nn.Linear(d + word_dim, 1) for k, d in nonverbal_dims.items()})
        self.projections = nn.ModuleDict({k: nn.Linear(d, word_dim, bias=False) for k, d in nonverbal_dims.items()})
        self.bias = nn.Parameter(torch.zeros(word_dim))

    def shift_vector(self, words: Tensor, states: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """words: (B, L, F_w), states: k -> (B, L, d_k) -> h (B, L, F_w) and gates k -> (B, L, 1)."""
        gates = {k: torch.sigmoid(g(torch.cat([states[k], words], dim=2))) for k, g in self.gates.items()}
        h = sum(gates[k] * self.projections[k](states[k]) for k in self.gates) + self.bias
        return h, gates

    def scale(self, words: Tensor, h: Tensor) -> Tensor:
        """alpha = min(beta ||e|| / ||h||, 1): (B, L, F_w) twice -> (B, L, 1)."""
        e_norm = words.norm(dim=2, keepdim=True)
        h_norm = h.norm(dim=2, keepdim=True).clamp(min=1e-12)  # h = 0 -> no shift either way
        return torch.clamp(self.beta * e_norm / h_norm, max=1.0)

    def forward(self, words: Tensor, states: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """-> shifted words e' (B, L, F_w) and alpha (B, L, 1)."""
        h, _ = self.shift_vector(words, states)
        alpha = self.scale(words, h)
        return words + alpha * h, alpha


class RAVEN(nn.Module):
    """Recurrent Attended Variation Embedding Network (Wang, Shen, Liu, Liang, Zadeh, Morency,
    "Words Can Shift: Dynamically Adjusting Word Representations Using Nonverbal Behaviors",
    AAAI 2019).

    Equations, for word i with embedding e_i (the verbal modality's features):

    1. Nonverbal subnetworks: for every nonverbal modality k, an LSTM over the frames inside
       word i; h_k,i is its state after the word's last frame.
    2. Gated modality mixing: w_k,i = sigmoid(W_k [h_k,i; e_i] + b_k) (a scalar per word);
       shift vector h_i = sum_k w_k,i U_k h_k,i + b_h (the size of e_i).
    3. Multimodal shifting: e'_i = e_i + alpha_i h_i, alpha_i = min(beta ||e_i|| / ||h_i||, 1)
       (the paper's ``||e||_2 / ||h||_2 * beta``: beta bounds the shift's norm by
       ``beta ||e_i||``).
    4. An LSTM over e'_1..e'_n; its state after the last real word goes through dropout and a
       linear layer to the prediction.

    Choices the paper leaves open, made here:

    * **Which frames belong to a word.** Word-aligned input (one nonverbal step per word,
      e.g. MOSEI's aligned pickles): each word has exactly its one frame. Unaligned input
      (MulT's ``*_noalign`` pickles: 50 words, 500 audio/visual steps): each sample's real
      nonverbal frames are split into as many equal chunks as it has real words (word i gets
      frames ``[floor(i m / n), floor((i+1) m / n))``, at least one; see :func:`word_chunks`),
      since those files carry no word boundaries.
    * **Modality roles.** ``verbal`` names the modality that is shifted (``text`` when
      present, else the first modality, e.g. audio on MMMO's audio+visual features); every
      other modality is a nonverbal one (any number >= 1, each with its own subnetwork and
      gate).
    * **Sizes** (preset ``raven``): subnetwork hidden 32 per nonverbal modality, word LSTM
      hidden 100 (unidirectional), beta 0.5, dropout 0.2 before the output layer.

    :meth:`encode` returns per word, on aligned input: the word LSTM's states (verbal), and
    each subnetwork's state (nonverbal); that is what MMLatch's feedback reads in
    ``raven-mmlatch``. ``extras["alpha"]`` (B, L) is each word's shift scale.

    Export (ONNX / TorchScript) is for word-aligned input only: the number of frames in the
    longest word is read from the lengths as a Python int, which a traced graph freezes.

    Args:
        verbal: the name of the verbal modality.
        word_dim: its feature size F_w.
        subnetworks: nonverbal modality -> :class:`NonverbalSubnetwork`.
        shift: the :class:`GatedShift`.
        word_rnn: ``nn.LSTM(F_w, H, batch_first=True)`` over the shifted words.
        head: ``(B, H) -> (B, num_outputs)``.
        dropout: dropout before the head.
    """

    def __init__(
        self,
        verbal: str,
        word_dim: int,
        subnetworks: nn.ModuleDict,
        shift: GatedShift,
        word_rnn: nn.LSTM,
        head: nn.Module,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if not len(subnetworks):
            raise ValueError("RAVEN needs at least one nonverbal modality")
        if verbal in subnetworks:
            raise ValueError(f"the verbal modality {verbal!r} cannot also be nonverbal")
        self.verbal = verbal
        self.subnetworks = subnetworks
        self.shift = shift
        self.word_rnn = word_rnn
        self.head = head
        self.dropout = Dropout(dropout)
        self.modality_dims: dict[str, int] = {verbal: word_dim, **{k: s.input_dim for k, s in subnetworks.items()}}
        self.representation_dims: dict[str, int] = {
            verbal: word_rnn.hidden_size,
            **{k: s.output_dim for k, s in subnetworks.items()},
        }
        self.check_finite = True

    def _words(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], Tensor, Tensor]:
        words = features[self.verbal]  # (B, L, F_w)
        n = lengths[self.verbal]
        states = {
            k: net(features[k], lengths[k], n, words.size(1)) for k, net in self.subnetworks.items()
        }  # k -> (B, L, d_k)
        shifted, alpha = self.shift(words, states)  # (B, L, F_w), (B, L, 1)
        out, _ = self.word_rnn(shifted)  # (B, L, H); unidirectional, never reads end padding
        return out, states, alpha, n

    def encode(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]:
        """modality -> per-word representation (B, L, d_k), zero at padded words."""
        out, states, _, n = self._words(features, lengths)
        return {self.verbal: masked_fill_padding(out, length_mask(n, out.size(1))), **states}

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L_k, F_k); lengths: (B,) or per modality -> ModelOutput
        with ``extras["alpha"]`` (B, L_verbal), 0 at padded words."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        if is_exporting() and any(lengths[k] is not lengths[self.verbal] for k in self.subnetworks):
            # the frames per word (a Python int from the lengths) would be frozen into the graph
            raise ValueError("RAVEN exports for word-aligned input only (one shared lengths input)")
        out, _, alpha, n = self._words(features, lengths)
        last = last_real_step(out, n)  # (B, H)
        alpha = alpha.squeeze(2).masked_fill(~length_mask(n, alpha.size(1)), 0.0)
        return ModelOutput(self.head(self.dropout(last)), None, {"alpha": alpha})


def _verbal(modality_dims: dict[str, int], verbal: str | None) -> str:
    names = list(modality_dims)
    if len(names) < 2:
        raise ValueError(f"RAVEN needs a verbal and at least one nonverbal modality, got {names}")
    name = verbal or ("text" if "text" in modality_dims else names[0])
    if name not in modality_dims:
        raise ValueError(f"raven: verbal modality {name!r} is not among the data's modalities {names}")
    return name


@register_model(
    "raven",
    "RAVEN (Wang et al. 2019): nonverbal LSTMs per word, gated shift of the word, LSTM over shifted words",
)
def raven(
    modality_dims: dict[str, int],
    *,
    hidden: int = 100,
    nonverbal_hidden: int = 32,
    beta: float = 0.5,
    dropout: float = 0.2,
    verbal: str | None = None,
    num_outputs: int = 1,
) -> RAVEN:
    """RAVEN (see :class:`RAVEN` for the equations and choices).

    ``verbal`` None: ``text`` if present, else the first modality.
    """
    word = _verbal(modality_dims, verbal)
    others = {k: f for k, f in modality_dims.items() if k != word}
    subnetworks = nn.ModuleDict({k: NonverbalSubnetwork(f, nonverbal_hidden) for k, f in others.items()})
    shift = GatedShift(modality_dims[word], {k: nonverbal_hidden for k in others}, beta)
    word_rnn = nn.LSTM(modality_dims[word], hidden, batch_first=True)
    model = RAVEN(word, modality_dims[word], subnetworks, shift, word_rnn, nn.Linear(hidden, num_outputs), dropout)
    # keep the caller's modality order (TopDown and exports follow it)
    model.modality_dims = {k: model.modality_dims[k] for k in modality_dims}
    model.representation_dims = {k: model.representation_dims[k] for k in modality_dims}
    return model


register_topdown(
    "raven-mmlatch",
    "raven",
    "RAVEN + MMLatch top-down feedback (reads the word LSTM and the per-word nonverbal states)",
)
