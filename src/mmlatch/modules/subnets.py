"""Utterance-level modality subnetworks of the classic fusion models (TFN, LMF, LF-DNN).

Each subnetwork turns one end-padded modality into one vector per sample and never reads
padding: a sequence subnetwork takes a unidirectional LSTM's state at the last REAL step, a
pooled subnetwork averages the real steps only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlatch.modules.checks import check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.transformer import last_real_step, masked_mean


def mlp(sizes: list[int], dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ReLU between them (and after the
    last when ``last_activation``), dropout before every hidden layer after the first."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i and dropout:
            layers.append(Dropout(dropout))
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class PooledSubNet(nn.Module):
    """Mean over the real steps, dropout, then three ReLU layers of ``hidden`` units (TFN's
    acoustic and visual embedding subnetworks).

    Args:
        input_dim: F_k.
        hidden: units per layer (the output size).
        dropout: dropout on the pooled input.
    """

    def __init__(self, input_dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = hidden
        self.dropout = Dropout(dropout)
        self.net = mlp([input_dim, hidden, hidden, hidden], last_activation=True)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F_k), lengths: (B,) -> (B, hidden)."""
        return self.net(self.dropout(masked_mean(x, lengths)))


class SequenceSubNet(nn.Module):
    """A unidirectional LSTM; its state after the last real step, dropout, a linear layer
    (TFN's spoken-language embedding subnetwork).

    Args:
        input_dim: F_k.
        hidden: LSTM hidden size.
        output_dim: size of the linear layer's output.
        dropout: dropout on the LSTM's final state.
    """

    def __init__(self, input_dim: int, hidden: int, output_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.rnn = nn.LSTM(input_dim, hidden, batch_first=True)
        self.dropout = Dropout(dropout)
        self.proj = nn.Linear(hidden, output_dim)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, L, F_k), lengths: (B,) -> (B, output_dim)."""
        out, _ = self.rnn(x)  # (B, L, H); unidirectional, so step len-1 never read the padding
        return self.proj(self.dropout(last_real_step(out, lengths)))


def utterance_subnets(
    modality_dims: dict[str, int],
    *,
    hidden: int,
    audio_hidden: int,
    visual_hidden: int,
    text_out: int,
    dropout: float,
    sequence: str | None = None,
) -> nn.ModuleDict:
    """The subnetworks of TFN / LMF / LF-DNN for the given modalities, in their order.

    Sizes: ``hidden`` for text, ``audio_hidden`` for audio, ``visual_hidden`` for visual and
    any other modality. ``sequence`` names the modalities (comma-separated, or ``all``) that
    get a :class:`SequenceSubNet` (an LSTM of that size; text's ends in a linear layer to
    ``text_out``, the others' keep their size); the others get a :class:`PooledSubNet`
    (the papers' mean over time, then 3 ReLU layers). None or ``papers``: text when present,
    the papers' choice.
    """
    if sequence is None or sequence == "papers":
        names = [k for k in modality_dims if k == "text"]
    elif sequence == "all":
        names = list(modality_dims)
    else:
        names = [k.strip() for k in sequence.split(",") if k.strip()]
    unknown = [k for k in names if k not in modality_dims]
    if unknown:
        raise ValueError(f"model_args.sequence names {unknown}, not among the data's modalities {list(modality_dims)}")
    nets: dict[str, nn.Module] = {}
    for k, f in modality_dims.items():
        size = {"text": hidden, "audio": audio_hidden}.get(k, visual_hidden)
        if k in names:
            nets[k] = SequenceSubNet(f, size, text_out if k == "text" else size, dropout)
        else:
            nets[k] = PooledSubNet(f, size, dropout)
    return nn.ModuleDict(nets)


def last_linear(module: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` inside ``module`` (an output layer)."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(module).__name__} has no linear layer")
    return linears[-1]


def fill_output_bias(bias: Tensor, mean: Tensor) -> None:
    """Set an output layer's bias (num_outputs,) to ``mean`` (num_outputs,), in place."""
    with torch.no_grad():
        bias.copy_(mean.to(bias.dtype).reshape(bias.shape))


def need_modalities(who: str, modality_dims: dict[str, int], at_least: int = 2) -> None:
    """ValueError in one line unless ``modality_dims`` has ``at_least`` modalities."""
    if len(modality_dims) < at_least:
        raise ValueError(
            f"{who} fuses modalities and needs at least {at_least}, got {list(modality_dims)}"
        )


class UtteranceFusionNet(nn.Module):
    """Per-modality utterance vectors -> a fusion -> a head (TFN, LMF, LF-DNN).

    Modalities may be unaligned: every subnetwork reads its own modality and lengths.

    Args:
        subnets: modality -> ``(x (B, L_k, F_k), lengths) -> (B, d_k)`` with ``input_dim`` and
            ``output_dim``; its key order is the model's modality order.
        fusion: ``{modality: (B, d_k)} -> (B, D)``.
        head: ``(B, D) -> (B, num_outputs)``.
        who: the model's name, for error messages.
    """

    def __init__(self, subnets: nn.ModuleDict, fusion: nn.Module, head: nn.Module, who: str) -> None:
        super().__init__()
        self.subnets = subnets
        self.fusion = fusion
        self.head = head
        self.who = who
        self.modality_dims: dict[str, int] = {k: s.input_dim for k, s in subnets.items()}
        self.check_finite = True

    def init_output_bias(self, mean: Tensor) -> None:
        """Start every prediction at ``mean`` (num_outputs,), the training labels' mean: the
        output layer's bias (LMF: the fusion's, its output is the prediction)."""
        bias = self.fusion.bias if isinstance(self.head, nn.Identity) else last_linear(self.head).bias
        fill_output_bias(bias, mean)

    def encode(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]:
        """modality -> its utterance vector z_k (B, d_k)."""
        return {k: net(features[k], lengths[k]) for k, net in self.subnets.items()}

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L_k, F_k); lengths: (B,) or per modality -> ModelOutput."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        return ModelOutput(self.head(self.fusion(self.encode(features, lengths))))
