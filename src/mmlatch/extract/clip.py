"""One clip: decode -> frame features -> word timing -> word-aligned features (raw).

:class:`Extractor` holds the loaded extractors of a spec (one per modality, see
:mod:`mmlatch.extract.registry`) and
turns a clip into a :class:`ClipFeatures`. Dataset extraction and ``predict --media`` both
call :meth:`Extractor.extract`, then :func:`mmlatch.extract.spec.normalise`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.extract import timing as timing_mod
from mmlatch.extract.align import average_frames_in_words
from mmlatch.extract.errors import ClipError, ExtractError
from mmlatch.extract.text import tokenize


@dataclass
class ClipInput:
    """What is known about one clip. ``words`` are user timings (word, start, end)."""

    id: str
    media: Path | None = None
    text: str | None = None
    words: list[tuple[str, float, float]] | None = None
    start: float | None = None
    end: float | None = None


@dataclass
class ClipFeatures:
    """Word-aligned raw features of one clip.

    Attributes:
        words: the n words (one step each).
        intervals: (n, 2) seconds, or None for a transcript without media.
        features: modality -> (n, F_k) float32 (visual geometry NaN on words without a face).
        status: what happened: ``timing`` method, ``fallback_reason``, ``unknown_words``,
            ``duration_s``, ``frames``/``face_frames`` (visual), ``seconds`` spent.
    """

    words: list[str]
    intervals: np.ndarray | None
    features: dict[str, np.ndarray]
    status: dict[str, Any] = field(default_factory=dict)


class Extractor:
    """The extractors of a spec, loaded once.

    Args:
        spec: from :meth:`create` (or a run's), its modalities used.
        vocabulary: words the text extractor must cover (only GloVe text files need it).
        loaded: extractors already loaded for this spec (modality -> extractor).
    """

    def __init__(self, spec: dict[str, Any], vocabulary: Iterable[str] | None = None,
                 loaded: dict[str, Any] | None = None) -> None:
        from mmlatch.extract.registry import from_entry
        from mmlatch.extract.spec import check_version

        check_version(spec, "extraction spec")
        self.spec = spec
        self.modalities = list(spec["modalities"])
        self.extractors: dict[str, Any] = dict(loaded or {})
        for m in self.modalities:
            if m not in self.extractors:
                self.extractors[m] = from_entry(m, spec[m], vocabulary=vocabulary)

    @classmethod
    def create(
        cls, modalities: list[str], choices: dict[str, tuple[str, dict[str, Any]]] | None = None, *,
        vocabulary: Iterable[str] | None = None, **spec_options: Any,
    ) -> Extractor:
        """Load the chosen extractors and build their spec.

        Args:
            modalities: subset of text, audio, visual.
            choices: modality -> (registered name, settings); default per modality:
                :data:`mmlatch.extract.registry.DEFAULTS`.
            vocabulary: see the class.
            spec_options: :func:`mmlatch.extract.spec.build_spec` settings (timing, rates, sizes).
        """
        from mmlatch.extract.registry import DEFAULTS, create_extractor, describe
        from mmlatch.extract.spec import build_spec

        loaded = {}
        for m in modalities:
            name, settings = (choices or {}).get(m, (DEFAULTS.get(m, ""), {}))
            loaded[m] = create_extractor(m, name, settings, vocabulary=vocabulary)
        spec = build_spec(modalities, {m: describe(e) for m, e in loaded.items()}, **spec_options)
        return cls(spec, vocabulary, loaded)

    @property
    def needs_media(self) -> bool:
        return "audio" in self.modalities or "visual" in self.modalities

    def extract(self, clip: ClipInput) -> ClipFeatures:
        """Word-aligned raw features of ``clip``; ClipError (with the reason) when it fails."""
        t0 = time.perf_counter()
        status: dict[str, Any] = {}
        words: list[str] | None = None
        if clip.text is not None:
            words = tokenize(clip.text)
            if not words:
                raise ClipError("empty transcript (no words)")
        elif clip.words is not None:
            words = [w for ws in (tokenize(w) for w, _, _ in clip.words) for w in ws]
        if not self.needs_media:
            if words is None:
                raise ClipError("no transcript")
            intervals = None
            status["timing"] = "none"
        else:
            if clip.media is None:
                raise ClipError("no media file for this clip")
            sr = int(self.spec["sample_rate"])
            from mmlatch.extract.decode import decode_audio

            samples = decode_audio(clip.media, sr, clip.start, clip.end)
            status["duration_s"] = round(samples.size / sr, 3)
            words, intervals = self._time_words(samples, sr, words, clip, status)
        feats: dict[str, np.ndarray] = {}
        if "text" in self.modalities:
            feats["text"], status["unknown_words"] = self.extractors["text"].embed(words)
        if "audio" in self.modalities:
            frames, times = self.extractors["audio"].frames(samples, sr)
            self._check_shape("audio", frames, len(times))
            feats["audio"] = average_frames_in_words(frames, times, intervals)
        if "visual" in self.modalities:
            feats["visual"] = self._visual(clip, intervals, status)
        for m, x in feats.items():
            self._check_shape(m, x, len(words))
        status["words"] = len(words)
        status["seconds"] = round(time.perf_counter() - t0, 3)
        return ClipFeatures(words, intervals, feats, status)

    def _check_shape(self, modality: str, x: np.ndarray, rows: int) -> None:
        """An extractor that returns another shape than it declares is refused, named."""
        dim = int(self.spec[modality]["dim"])
        if np.ndim(x) != 2 or np.shape(x) != (rows, dim):
            name = self.spec[modality]["extractor"]
            raise ExtractError(f"{modality} extractor {name!r} returned shape {np.shape(x)}, expected ({rows}, {dim})")

    def _time_words(
        self, samples: np.ndarray, sr: int, words: list[str] | None, clip: ClipInput, status: dict[str, Any]
    ) -> tuple[list[str], np.ndarray]:
        if clip.words is not None:
            assert words is not None
            status["timing"] = "given"
            return words, timing_mod.given_intervals(words, clip.words, clip.id)
        if words is None:
            status["timing"] = "recognised"
            return timing_mod.recognise(samples, sr)
        try:
            intervals = timing_mod.force_align(samples, sr, words)
            status["timing"] = "pocketsphinx"
        except ClipError as e:
            intervals = timing_mod.proportional(samples, sr, words)
            status["timing"] = "proportional"
            status["fallback_reason"] = str(e)
        return words, intervals

    def _visual(self, clip: ClipInput, intervals: np.ndarray, status: dict[str, Any]) -> np.ndarray:
        from mmlatch.extract.decode import decode_video

        assert clip.media is not None
        vs = self.spec["visual"]
        fps = float(vs["frame_rate"])
        frames_iter, _ = decode_video(clip.media, fps, int(vs["max_side"]), clip.start, clip.end)
        visual = self.extractors["visual"]
        rows = [np.asarray(visual.frame(f), np.float32) for f in frames_iter]
        if not rows:
            raise ClipError(f"{clip.media.name}: the video has no frames")
        if any(r.shape != rows[0].shape for r in rows):
            raise ExtractError(f"visual extractor {vs['extractor']!r} returned frames of different shapes")
        frames = np.stack(rows)  # (T, F)
        self._check_shape("visual", frames, len(rows))
        times = (np.arange(len(rows)) + 0.5) / fps
        status["frames"] = len(rows)
        if "has_face" in vs["feature_names"]:
            status["face_frames"] = int(np.nansum(frames[:, vs["feature_names"].index("has_face")]))
        return average_frames_in_words(frames, times, intervals)
