"""Multimodal Routing (Tsai et al., EMNLP 2020), a Table 1 comparator, and Routing + MMLatch."""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from mmlatch.models.registry import register_model, register_topdown
from mmlatch.modules.checks import check_inputs, normalize_lengths
from mmlatch.modules.dropout import Dropout
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.transformer import TransformerEncoder, TransformerSequenceEncoder, masked_mean


class CapsuleRouting(nn.Module):
    """Routes N feature capsules to J concept capsules (the paper's routing stage).

    With poses u_i (P), activations p_i in (0, 1) and votes ``v_ij = u_i W_ij`` (D):

    * start from uniform routing ``r_ij = 1 / J``;
    * concepts update: ``c_j = sum_i p_i r_ij v_ij``;
    * ``iterations`` times: routing adjustment ``r_ij = softmax_j(<v_ij, c_j> / sqrt(D))``
      (so ``sum_j r_ij = 1`` for every feature i), then the concepts update again.

    Args:
        num_features: N.
        pose_dim: P.
        num_concepts: J.
        concept_dim: D.
        iterations: routing adjustments after the uniform pass (>= 0).
    """

    def __init__(self, num_features: int, pose_dim: int, num_concepts: int, concept_dim: int, iterations: int = 1) -> None:
        super().__init__()
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        if num_concepts < 1:
            raise ValueError(f"num_concepts must be >= 1, got {num_concepts}")
        self.iterations = iterations
        self.num_concepts = num_concepts
        self.scale = 1.0 / math.sqrt(concept_dim)
        # the authors' initialisation scale: sqrt(J / (P N))
        std = math.sqrt(num_concepts / (pose_dim * num_features))
        self.weight = nn.Parameter(std * torch.randn(num_features, pose_dim, num_concepts, concept_dim))

    def votes(self, poses: Tensor) -> Tensor:
        """poses: (B, N, P) -> votes v (B, N, J, D)."""
        return torch.einsum("bnp,npjd->bnjd", poses, self.weight)

    def route(self, votes: Tensor, activations: Tensor) -> tuple[Tensor, Tensor]:
        """votes: (B, N, J, D), activations: (B, N) -> concepts (B, J, D) and the last routing
        coefficients r (B, N, J)."""
        batch, n, j, _ = votes.shape
        weighted = votes * activations[:, :, None, None]  # p_i v_ij
        r = votes.new_full((batch, n, j), 1.0 / j)
        concepts = torch.einsum("bnj,bnjd->bjd", r, weighted)
        for _ in range(self.iterations):
            agreement = torch.einsum("bnjd,bjd->bnj", votes, concepts) * self.scale
            r = torch.softmax(agreement, dim=2)
            concepts = torch.einsum("bnj,bnjd->bjd", r, weighted)
        return concepts, r

    def forward(self, poses: Tensor, activations: Tensor) -> tuple[Tensor, Tensor]:
        """poses: (B, N, P), activations: (B, N) -> concepts (B, J, D), coefficients (B, N, J)."""
        return self.route(self.votes(poses), activations)


def feature_subsets(names: list[str], max_order: int = 3) -> list[tuple[str, ...]]:
    """Every modality subset of size 1 .. max_order, unimodal first: t, a, v, ta, tv, av, tav."""
    return [s for k in range(1, min(max_order, len(names)) + 1) for s in itertools.combinations(names, k)]


class MultimodalRouting(nn.Module):
    """Multimodal Routing (Tsai, Ma, Yang, Salakhutdinov, Morency, "Multimodal Routing:
    Improving Local and Global Interpretability of Multimodal Language Analysis", EMNLP 2020).

    Stages, for one sample:

    1. **Encoding**: explanatory features f_i, one per modality subset of size 1-3 (three
       modalities: unimodal t, a, v, bimodal ta, tv, av, trimodal tav).
    2. **Primary capsules**: per feature a linear layer gives a pose u_i (P) and an activation
       ``p_i = sigmoid(.)`` (the feature's presence).
    3. **Routing** to J concept capsules (:class:`CapsuleRouting`): ``c_j = sum_i p_i r_ij
       W_ij u_i``, ``r_ij = softmax_j(<W_ij u_i, c_j> / sqrt(D))``, from uniform r, repeated
       ``iterations`` times.
    4. **Prediction**: a concept's score is ``s_j = <o_j, c_j>`` with a learned o_j. One concept
       per output (classification: per class; IEMOCAP: per emotion; POM: per column):
       ``y^_j = s_j + b_j``. Single-output regression (sentiment): J concepts (7 by default,
       the authors' MOSEI concepts, one per sentiment class) and ``y^ = readout(s)``, a linear
       regression head on the concept scores (the issue's "regression head for sentiment").

    ``extras["routing"]`` (B, N, J) holds the routing coefficients of the last iteration
    (summing to 1 over concepts), ``extras["activation"]`` (B, N) the p_i; ``feature_names``
    names the N features (``mmlatch analyze routing`` reads them).

    Choices the paper leaves open or the authors' code sets, made here:

    * **Encoders**: the authors use MulT's transformers as the feature extractor. Here each
      modality has its own MulT-style self-attention encoder (temporal Conv1d to d, scaled
      sinusoidal positions, pre-LN layers); a subset's feature is hierarchical crossmodal
      attention, the first modality of the subset as the query attending each next one in turn
      (one crossmodal stack per stage), then the mean over the query's real steps. A unimodal
      feature is the mean of its encoder's output. :meth:`encode` returns the per-step encoder
      outputs (what ``routing-mmlatch``'s feedback reads).
    * **Routing**: ``iterations`` 1 after the uniform pass (the authors' MOSEI script,
      ``--num-routing 1``); agreement scaled by 1/sqrt(D) and the activation p_i used in every
      concepts update (the authors' first pass omits p_i; the paper's equation has it); no
      layer norm (the authors: it destroys interpretability); dropout on the concepts (0.5).
    * **Concept embeddings** o_j start random (std 1/sqrt(D)); the authors' start at zero,
      which leaves every other parameter without a gradient on the first step.

    Args:
        encoders: modality -> encoder ``(x, lengths) -> (B, L, d)`` with ``input_dim`` and
            ``output_dim``; key order is the model's modality order.
        stages: ``"a+b+c"`` -> ModuleList of len(subset) - 1 crossmodal :class:`TransformerEncoder`
            for every multimodal subset (its keys name the subsets routed, after the unimodal ones).
        primary: feature name -> ``Linear(d, P + 1)`` (pose and activation logit), one per feature
            in routing order (unimodal in modality order, then ``stages``' order).
        routing: the :class:`CapsuleRouting`.
        readout: ``(B, J) -> (B, num_outputs)`` on the concept scores, or None for one concept
            per output (``s_j + b_j``).
        dropout: dropout on the concepts.
    """

    def __init__(
        self,
        encoders: nn.ModuleDict,
        stages: nn.ModuleDict,
        primary: nn.ModuleDict,
        routing: CapsuleRouting,
        readout: nn.Module | None,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        names = list(encoders)
        if len(names) < 2:
            raise ValueError(f"Multimodal Routing needs at least 2 modalities, got {names}")
        self.feature_names: list[str] = names + list(stages)
        if list(primary) != self.feature_names:
            raise ValueError(f"primary capsules {list(primary)} must follow the features {self.feature_names}")
        for key, stack in stages.items():
            members = key.split("+")
            if len(stack) != len(members) - 1 or not set(members) <= set(names):
                raise ValueError(f"feature {key!r}: needs {len(members) - 1} stages over modalities {names}")
        if routing.weight.size(0) != len(self.feature_names):
            raise ValueError(f"routing expects {routing.weight.size(0)} features, the model has {len(self.feature_names)}")
        self.encoders = encoders
        self.stages = stages
        self.primary = primary
        self.routing = routing
        self.readout = readout
        self.dropout = Dropout(dropout)
        concepts, dim = routing.weight.size(2), routing.weight.size(3)
        self.concept_embedding = nn.Parameter(torch.randn(concepts, dim) / math.sqrt(dim))
        self.bias = nn.Parameter(torch.zeros(concepts)) if readout is None else None
        self.modality_dims: dict[str, int] = {k: e.input_dim for k, e in encoders.items()}
        self.representation_dims: dict[str, int] = {k: e.output_dim for k, e in encoders.items()}
        self.check_finite = True

    def encode(self, features: dict[str, Tensor], lengths: dict[str, Tensor]) -> dict[str, Tensor]:
        """modality -> encoder output (B, L_k, d), zero at padded steps."""
        return {k: enc(features[k], lengths[k]) for k, enc in self.encoders.items()}

    def explanatory_features(self, reps: dict[str, Tensor], lengths: dict[str, Tensor]) -> Tensor:
        """Encoder outputs -> the N explanatory features (B, N, d), in ``feature_names`` order."""
        feats = [masked_mean(reps[k], lengths[k]) for k in self.encoders]
        for key, stack in self.stages.items():
            query, *others = key.split("+")
            x = reps[query]
            for stage, other in zip(stack, others):
                x = stage(x, lengths[query], reps[other], lengths[other])
            feats.append(masked_mean(x, lengths[query]))
        return torch.stack(feats, dim=1)

    def forward(
        self, features: dict[str, Tensor], lengths: Tensor | dict[str, Tensor] | None = None
    ) -> ModelOutput:
        """features: modality -> (B, L_k, F_k); lengths: (B,) or per modality -> ModelOutput with
        extras ``routing`` (B, N, J) and ``activation`` (B, N)."""
        lengths = normalize_lengths(features, lengths)
        check_inputs(features, lengths, self.modality_dims, self.check_finite)
        f = self.explanatory_features(self.encode(features, lengths), lengths)  # (B, N, d)
        caps = torch.stack([proj(f[:, i]) for i, proj in enumerate(self.primary.values())], dim=1)  # (B, N, P+1)
        poses, activation = caps[..., :-1], torch.sigmoid(caps[..., -1])  # (B, N, P), (B, N)
        concepts, coefficients = self.routing(poses, activation)  # (B, J, D), (B, N, J)
        scores = (self.dropout(concepts) * self.concept_embedding).sum(dim=2)  # (B, J)
        prediction = scores + self.bias if self.readout is None else self.readout(scores)
        return ModelOutput(prediction, None, {"routing": coefficients, "activation": activation})


@register_model(
    "routing",
    "Multimodal Routing (Tsai et al. 2020): uni/bi/trimodal capsules routed to concept capsules",
)
def routing(
    modality_dims: dict[str, int],
    *,
    hidden: int = 40,
    heads: int = 4,
    layers: int = 2,
    pose_dim: int = 64,
    concept_dim: int = 64,
    concepts: int | None = None,
    iterations: int = 1,
    dropout: float = 0.5,
    attn_dropout: float = 0.0,
    embed_dropout: float = 0.0,
    num_outputs: int = 1,
) -> MultimodalRouting:
    """Multimodal Routing (see :class:`MultimodalRouting` for the stages and choices).

    ``concepts`` None: one per output when there are several outputs, else 7 with a linear
    regression readout. ``layers`` is the depth of every encoder and crossmodal stage.
    """
    if heads < 1 or hidden % heads:
        raise ValueError(f"heads ({heads}) must divide hidden ({hidden})")
    names = list(modality_dims)
    if len(names) < 2:
        raise ValueError(f"Multimodal Routing needs at least 2 modalities, got {names}")
    n_concepts = concepts or (num_outputs if num_outputs > 1 else 7)
    encoders = nn.ModuleDict(
        {
            k: TransformerSequenceEncoder(f, hidden, heads, layers, attn_dropout, 0.0, 0.0, embed_dropout)
            for k, f in modality_dims.items()
        }
    )
    subsets = [s for s in feature_subsets(names) if len(s) > 1]
    stages = nn.ModuleDict(
        {
            "+".join(s): nn.ModuleList(
                TransformerEncoder(hidden, heads, layers, attn_dropout, cross=True, embed=False)
                for _ in range(len(s) - 1)
            )
            for s in subsets
        }
    )
    feature_names = names + list(stages)
    primary = nn.ModuleDict({k: nn.Linear(hidden, pose_dim + 1) for k in feature_names})
    router = CapsuleRouting(len(feature_names), pose_dim, n_concepts, concept_dim, iterations)
    readout = None if n_concepts == num_outputs else nn.Linear(n_concepts, num_outputs)
    return MultimodalRouting(encoders, stages, primary, router, readout, dropout)


register_topdown(
    "routing-mmlatch",
    "routing",
    "Multimodal Routing + MMLatch top-down feedback (LSTM generators read the unimodal encoders)",
)
