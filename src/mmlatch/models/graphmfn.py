"""Graph-MFN: MFN with the Dynamic Fusion Graph (Zadeh, Liang, Poria, Cambria, Morency, ACL 2018,
the CMU-MOSEI paper)."""

from __future__ import annotations

from itertools import combinations

import torch
from torch import Tensor, nn

from mmlatch.models.mfn import GatedMemory, MemoryFusionNet, lstm_cells
from mmlatch.models.registry import register_model
from mmlatch.modules.subnets import mlp, need_modalities


def subsets(names: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``names``, by size then in order: the graph's vertices."""
    return [s for r in range(1, len(names) + 1) for s in combinations(names, r)]


class DynamicFusionGraph(nn.Module):
    """The Dynamic Fusion Graph: one vertex per non-empty subset of the modalities.

    A unimodal vertex is a linear map of that modality's ``[c_{t-1}; c_t]``. Every
    multimodal vertex S is a ReLU layer over the concatenation of its proper subsets'
    vertices, each scaled by the efficacy of its edge into S; the output T is a ReLU layer over
    every vertex scaled by its edge's efficacy. The efficacies (one per edge) are
    ``sigmoid(D_alpha(unimodal vertices))``, computed afresh at every step: the graph's
    structure changes with the input. Two modalities: vertices a, v, av; three: 7 vertices,
    19 edges.

    Args:
        state_dims: modality -> h_k (its LSTM's hidden size).
        inner: size of every multimodal vertex and of T.
        efficacy_hidden: D_alpha's hidden size.
        dropout: dropout in D_alpha.
    """

    def __init__(self, state_dims: dict[str, int], inner: int, efficacy_hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        names = list(state_dims)
        self.vertices = subsets(names)
        self.unimodal = nn.ModuleDict({k: nn.Linear(2 * h, h) for k, h in state_dims.items()})
        size = {(k,): h for k, h in state_dims.items()}
        self.inputs: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        nets: dict[str, nn.Module] = {}
        for s in self.vertices[len(names):]:
            parts = [p for p in subsets(list(s)) if p != s]
            self.inputs[s] = parts
            nets["+".join(s)] = nn.Sequential(nn.Linear(sum(size[p] for p in parts), inner), nn.ReLU())
            size[s] = inner
        self.multimodal = nn.ModuleDict(nets)
        self.output = nn.Sequential(nn.Linear(sum(size[v] for v in self.vertices), inner), nn.ReLU())
        self.num_edges = sum(len(p) for p in self.inputs.values()) + len(self.vertices)
        self.efficacy = mlp([sum(state_dims.values()), efficacy_hidden, self.num_edges], dropout)
        self.output_dim = inner

    def forward(self, prev: dict[str, Tensor], new: dict[str, Tensor]) -> Tensor:
        """prev, new: modality -> c (B, h_k) -> T (B, inner)."""
        out = {(k,): lin(torch.cat([prev[k], new[k]], dim=1)) for k, lin in self.unimodal.items()}
        alpha = torch.sigmoid(self.efficacy(torch.cat(list(out.values()), dim=1)))  # (B, edges)
        e = 0
        for s, parts in self.inputs.items():
            scaled = [out[p] * alpha[:, e + i : e + i + 1] for i, p in enumerate(parts)]
            out[s] = self.multimodal["+".join(s)](torch.cat(scaled, dim=1))
            e += len(parts)
        scaled = [out[v] * alpha[:, e + i : e + i + 1] for i, v in enumerate(self.vertices)]
        return self.output(torch.cat(scaled, dim=1))


@register_model(
    "graph-mfn",
    "Graph-MFN (Zadeh et al. 2018): MFN with the dynamic fusion graph in place of its attention",
)
def graph_mfn(
    modality_dims: dict[str, int],
    *,
    hidden: int = 256,
    audio_hidden: int = 32,
    visual_hidden: int = 256,
    memsize: int = 300,
    inner_node_dim: int = 64,
    efficacy_hidden: int = 64,
    memory_hidden: int = 32,
    memory_dropout: float = 0.0,
    gamma1_hidden: int = 128,
    gamma1_dropout: float = 0.5,
    gamma2_hidden: int = 64,
    gamma2_dropout: float = 0.5,
    out_hidden: int = 256,
    out_dropout: float = 0.0,
    num_outputs: int = 1,
) -> MemoryFusionNet:
    """Graph-MFN. Defaults: MMSA 2.2.1's published MOSI setting (configs/zoo/graph-mfn.yaml):
    ``memory_*`` is its NNConfig; ``efficacy_hidden`` is its inner_node_dim."""
    need_modalities("graph-mfn", modality_dims)
    cells = lstm_cells(modality_dims, hidden, audio_hidden, visual_hidden)
    state = sum(cell.hidden_size for cell in cells.values())
    graph = DynamicFusionGraph({k: c.hidden_size for k, c in cells.items()}, inner_node_dim, efficacy_hidden)
    memory = GatedMemory(graph.output_dim, memsize, memory_hidden, gamma1_hidden, gamma2_hidden,
                         memory_dropout, gamma1_dropout, gamma2_dropout)
    head = mlp([state + memsize, out_hidden, num_outputs], out_dropout)
    return MemoryFusionNet(cells, graph, memory, head, "graph-mfn")
