"""MFN: Memory Fusion Network (Zadeh, Liang, Mazumder, Poria, Cambria, Morency, AAAI 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model
from mmlatch.modules.checks import check_aligned, check_inputs, is_exporting, normalize_lengths
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.subnets import fill_output_bias, last_linear, mlp, need_modalities


class DeltaMemoryAttention(nn.Module):
    """MFN's Delta-memory Attention Network: attention over the cell states of two steps.

    ``c* = [c_{t-1}; c_t]`` (every modality's LSTM memory, both steps), ``a = softmax(D_a(c*))``
    over its dimensions, output ``a * c*``.

    Args:
        state_dim: sum of the LSTM hidden sizes.
        hidden: D_a's hidden size.
        dropout: D_a's dropout.
    """

    def __init__(self, state_dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.output_dim = 2 * state_dim
        self.net = mlp([2 * state_dim, hidden, 2 * state_dim], dropout)

    def forward(self, prev: dict[str, Tensor], new: dict[str, Tensor]) -> Tensor:
        """prev, new: modality -> c (B, h_k) -> attended c* (B, 2 sum h_k)."""
        star = torch.cat([*prev.values(), *new.values()], dim=1)
        return torch.softmax(self.net(star), dim=1) * star


class GatedMemory(nn.Module):
    """MFN's Multi-view Gated Memory: ``u_t = g1 * u_{t-1} + g2 * tanh(D_u(s))`` with
    ``g1 = sigmoid(D_g1([s; u_{t-1}]))``, ``g2 = sigmoid(D_g2([s; u_{t-1}]))``, where ``s`` is
    what the cross-modal network (attention or fusion graph) read at step t.

    Args:
        input_dim: size of s.
        memory: size of u.
        hidden, gamma1_hidden, gamma2_hidden: D_u's, D_g1's and D_g2's hidden sizes.
        dropout, gamma1_dropout, gamma2_dropout: their dropouts.
    """

    def __init__(
        self,
        input_dim: int,
        memory: int,
        hidden: int,
        gamma1_hidden: int,
        gamma2_hidden: int,
        dropout: float = 0.0,
        gamma1_dropout: float = 0.0,
        gamma2_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.memory = memory
        self.proposal = mlp([input_dim, hidden, memory], dropout)
        self.gamma1 = mlp([input_dim + memory, gamma1_hidden, memory], gamma1_dropout)
        self.gamma2 = mlp([input_dim + memory, gamma2_hidden, memory], gamma2_dropout)

    def forward(self, s: Tensor, u: Tensor) -> Tensor:
        """s: (B, S), u: (B, M) -> u_t (B, M)."""
        both = torch.cat([s, u], dim=1)
        return torch.sigmoid(self.gamma1(both)) * u + torch.sigmoid(self.gamma2(both)) * torch.tanh(self.proposal(s))


class MemoryFusionNet(nn.Module):
    """A system of LSTMs (one per modality) whose cell states a cross-modal network reads at
    every step, a gated multimodal memory, and an output network on the last states.

    The output network reads ``[h_T for every modality; u_T]``. Padding is never read: a
    sample's states stop changing after its last real step, so T is its own length.
    Needs word-aligned input. MFN steps through time in Python, so it does not export
    (ONNX / TorchScript trace would freeze the number of steps).

    Args:
        cells: modality -> ``nn.LSTMCell(F_k, h_k)``; key order is the modality order.
        cross: ``(c_prev, c_new) -> s (B, S)``: :class:`DeltaMemoryAttention` (MFN) or a
            dynamic fusion graph (Graph-MFN).
        memory: the :class:`GatedMemory`.
        head: ``(B, sum h_k + M) -> (B, num_outputs)``.
        who: the model's name, for messages.
    """

    def __init__(self, cells: nn.ModuleDict, cross: nn.Module, memory: GatedMemory, head: nn.Module, who: str) -> None:
        super().__init__()
        self.cells = cells
        self.cross = cross
        self.memory = memory
        self.head = head
        self.who = who
        self.modality_dims: dict[str, int] = {k: c.input_size for k, c in cells.items()}
        self.check_finite = True

    def init_output_bias(self, mean: Tensor) -> None:
        """Start every prediction at ``mean`` (num_outputs,), the training labels' mean."""
        fill_output_bias(last_linear(self.head).bias, mean)

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L, F_k); lengths: (B,) or per modality -> ModelOutput."""
        if is_exporting():
            raise ValueError(f"{self.who} does not export: it steps through time in Python, which a trace would freeze")
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        check_aligned(lengths, features, self.who)
        first = next(iter(self.modality_dims))
        x0 = features[first]
        batch, steps = x0.size(0), x0.size(1)
        n = lengths[first].to(x0.device)
        h = {k: x0.new_zeros(batch, c.hidden_size) for k, c in self.cells.items()}
        c = {k: x0.new_zeros(batch, cell.hidden_size) for k, cell in self.cells.items()}
        u = x0.new_zeros(batch, self.memory.memory)
        for t in range(steps):
            real = (t < n).unsqueeze(1)  # (B, 1): padded steps leave every state as it was
            new_h, new_c = {}, {}
            for k, cell in self.cells.items():
                new_h[k], new_c[k] = cell(features[k][:, t], (h[k], c[k]))
            s = self.cross(c, new_c)  # (B, S)
            u = torch.where(real, self.memory(s, u), u)
            h = {k: torch.where(real, new_h[k], h[k]) for k in h}
            c = {k: torch.where(real, new_c[k], c[k]) for k in c}
        return ModelOutput(self.head(torch.cat([*h.values(), u], dim=1)))


def lstm_cells(modality_dims: dict[str, int], hidden: int, audio_hidden: int, visual_hidden: int) -> nn.ModuleDict:
    """One LSTM cell per modality: ``hidden`` units for text, ``audio_hidden`` for audio,
    ``visual_hidden`` for visual and any other modality."""
    size = {"text": hidden, "audio": audio_hidden}
    return nn.ModuleDict({k: nn.LSTMCell(f, size.get(k, visual_hidden)) for k, f in modality_dims.items()})


@register_model(
    "mfn",
    "MFN (Zadeh et al. 2018): per-modality LSTMs, delta-memory attention, multi-view gated memory",
)
def mfn(
    modality_dims: dict[str, int],
    *,
    hidden: int = 256,
    audio_hidden: int = 32,
    visual_hidden: int = 256,
    memsize: int = 400,
    attn_hidden: int = 32,
    attn_dropout: float = 0.2,
    memory_hidden: int = 64,
    memory_dropout: float = 0.0,
    gamma1_hidden: int = 256,
    gamma1_dropout: float = 0.7,
    gamma2_hidden: int = 32,
    gamma2_dropout: float = 0.5,
    out_hidden: int = 128,
    out_dropout: float = 0.0,
    num_outputs: int = 1,
) -> MemoryFusionNet:
    """MFN with a window of two steps. Defaults: MMSA 2.2.1's published MOSI setting
    (configs/zoo/mfn.yaml): ``attn_*`` is its NN1, ``memory_*`` NN2, ``out_*`` its output net."""
    need_modalities("mfn", modality_dims)
    cells = lstm_cells(modality_dims, hidden, audio_hidden, visual_hidden)
    state = sum(cell.hidden_size for cell in cells.values())
    cross = DeltaMemoryAttention(state, attn_hidden, attn_dropout)
    memory = GatedMemory(cross.output_dim, memsize, memory_hidden, gamma1_hidden, gamma2_hidden,
                         memory_dropout, gamma1_dropout, gamma2_dropout)
    head = mlp([state + memsize, out_hidden, num_outputs], out_dropout)
    return MemoryFusionNet(cells, cross, memory, head, "mfn")
