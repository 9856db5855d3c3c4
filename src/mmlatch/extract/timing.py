"""When each word was said: given timings, forced alignment, or proportional timing.

Methods, recorded per clip (``timing`` in the manifest):

- ``given``: the user's timings (``--words FILE``: CSV with ``word,start,end`` columns,
  JSON ``[{"word", "start", "end"}, ...]``, or a Praat TextGrid (a ``words`` tier, e.g. from
  the Montreal Forced Aligner); seconds from the clip's start);
- ``pocketsphinx``: forced alignment of the known transcript with pocketsphinx 5's bundled
  en-us acoustic model and dictionary;
- ``proportional``: the fallback when alignment fails (a word outside the dictionary, or
  the aligner finds no path): the detected speech (librosa's energy split, 35 dB below the
  peak) is shared among the words in proportion to their letters; flagged per clip with the
  reason the aligner gave;
- ``recognised``: no transcript was given: pocketsphinx's bundled language model
  transcribes the speech (words and times).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np

from mmlatch.extract.errors import ClipError, ExtractError
from mmlatch.extract.text import tokenize

FRAME_S = 0.01  # pocketsphinx frames
_FILLERS = {"<sil>", "<s>", "</s>", "(NULL)", "[NOISE]", "++NOISE++"}


def read_word_timings(path: Path) -> list[tuple[str, float, float]]:
    """Read ``word,start,end`` rows from a CSV or JSON file (see module docstring)."""
    if not path.is_file():
        raise ExtractError(f"word timings {path}: no such file")
    rows: list[tuple[str, float, float]] = []
    try:
        if path.suffix.lower() == ".textgrid":
            rows = _read_textgrid(path)
        elif path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            for i, item in enumerate(data):
                w, s, e = (item["word"], item["start"], item["end"]) if isinstance(item, dict) else item
                rows.append((str(w), float(s), float(e)))
        else:
            import pandas as pd

            frame = pd.read_csv(path)
            missing = {"word", "start", "end"} - set(frame.columns)
            if missing:
                raise ExtractError(f"word timings {path}: missing column(s) {sorted(missing)}; need word,start,end")
            rows = [(str(w), float(s), float(e)) for w, s, e in zip(frame["word"], frame["start"], frame["end"])]
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        if isinstance(e, ExtractError):
            raise
        raise ExtractError(f"word timings {path}: unreadable ({e}); need word,start,end rows") from e
    for w, s, e in rows:
        if not (np.isfinite(s) and np.isfinite(e) and 0 <= s <= e):
            raise ExtractError(f"word timings {path}: word {w!r} has start {s}, end {e} (need 0 <= start <= end)")
    return rows


_SILENCES = {"", "sp", "sil", "<sil>", "spn"}


def _read_textgrid(path: Path) -> list[tuple[str, float, float]]:
    """Word intervals of a Praat TextGrid (long text format): the tier named ``words`` (else the
    first interval tier); empty and silence labels (``sp``, ``sil``) are skipped."""
    text = path.read_text(encoding="utf-8", errors="replace")
    tiers = re.split(r"\n\s*item\s*\[\d+\]:", text)[1:]
    if not tiers:
        raise ValueError("no tiers found (long text format expected)")
    names = [re.search(r'name\s*=\s*"([^"]*)"', t) for t in tiers]
    chosen = next((t for t, n in zip(tiers, names) if n and n.group(1).lower() == "words"), tiers[0])
    rows = []
    for lo, hi, label in re.findall(r'xmin\s*=\s*([-\d.eE+]+)\s*xmax\s*=\s*([-\d.eE+]+)\s*text\s*=\s*"([^"]*)"', chosen):
        if label.strip().lower() not in _SILENCES:
            rows.append((label.strip(), float(lo), float(hi)))
    return rows


def given_intervals(words: list[str], timings: list[tuple[str, float, float]], where: str) -> np.ndarray:
    """Match user timings to the transcript's words (same words in the same order) -> (n, 2)."""
    timed = [tokenize(w) for w, _, _ in timings]
    flat = [(t[0] if t else "", s, e) for t, (_, s, e) in zip(timed, timings) if t]
    if [w for w, _, _ in flat] != words:
        raise ClipError(
            f"{where}: the word timings' words {[w for w, _, _ in flat][:8]}... do not match the "
            f"transcript's {words[:8]}..."
        )
    return np.array([(s, e) for _, s, e in flat], dtype=np.float64).reshape(-1, 2)


@functools.lru_cache(maxsize=4)
def _decoder(sample_rate: int, align: bool):  # noqa: ANN202 - pocketsphinx type
    """A pocketsphinx decoder (loading its model takes seconds: one per process and kind)."""
    try:
        from pocketsphinx import Decoder
    except ImportError as e:
        raise ExtractError("word timing needs pocketsphinx: pip install 'mmlatch[extract]'") from e
    if align:
        return Decoder(samprate=sample_rate, loglevel="FATAL", bestpath=False)
    return Decoder(samprate=sample_rate, loglevel="FATAL")


def _pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()


def _segments(decoder) -> list[tuple[str, float, float]]:  # noqa: ANN001
    out: list[tuple[str, float, float]] = []
    segs = decoder.seg()
    if segs is None:  # the search ended without a path through the transcript
        raise ClipError("pocketsphinx found no alignment path for the transcript")
    for seg in segs:
        w = re.sub(r"\(\d+\)$", "", seg.word)
        if w in _FILLERS or w.startswith("[") or w.startswith("+"):
            continue
        out.append((w, seg.start_frame * FRAME_S, (seg.end_frame + 1) * FRAME_S))
    return out


def force_align(samples: np.ndarray, sample_rate: int, words: list[str]) -> np.ndarray:
    """(n, 2) word intervals from pocketsphinx forced alignment.

    Raises:
        ClipError: a word the dictionary lacks, or no alignment found (the reason is kept).
    """
    dec = _decoder(sample_rate, True)
    unknown = [w for w in words if dec.lookup_word(w) is None]
    if unknown:
        raise ClipError(f"not in the pocketsphinx dictionary: {', '.join(sorted(set(unknown))[:5])}")
    try:
        dec.set_align_text(" ".join(words))
        dec.start_utt()
        dec.process_raw(_pcm16(samples), full_utt=True)
        dec.end_utt()
    except (RuntimeError, ValueError) as e:
        try:
            dec.end_utt()  # leave the shared decoder ready for the next clip
        except RuntimeError:
            pass
        raise ClipError(f"pocketsphinx could not align: {e}") from e
    segs = _segments(dec)
    if [w for w, _, _ in segs] != words:
        raise ClipError(f"pocketsphinx aligned {len(segs)} of {len(words)} words")
    return np.array([(s, e) for _, s, e in segs], dtype=np.float64).reshape(-1, 2)


def recognise(samples: np.ndarray, sample_rate: int) -> tuple[list[str], np.ndarray]:
    """Transcribe with pocketsphinx's bundled en-us language model: words and (n, 2) intervals."""
    dec = _decoder(sample_rate, False)
    dec.start_utt()
    dec.process_raw(_pcm16(samples), full_utt=True)
    dec.end_utt()
    try:
        segs = _segments(dec)
    except ClipError:
        segs = []
    if not segs:
        raise ClipError("no words recognised in the audio (no transcript given)")
    return [w for w, _, _ in segs], np.array([(s, e) for _, s, e in segs], dtype=np.float64)


def speech_intervals(samples: np.ndarray, sample_rate: int, top_db: float = 35.0) -> np.ndarray:
    """(k, 2) seconds of detected speech (energy within ``top_db`` of the loudest frame)."""
    import librosa

    if samples.size == 0 or float(np.max(np.abs(samples))) < 1e-4:
        return np.zeros((0, 2))
    hop = int(0.01 * sample_rate)
    iv = librosa.effects.split(samples, top_db=top_db, frame_length=4 * hop, hop_length=hop)
    return iv.astype(np.float64) / sample_rate


def proportional(samples: np.ndarray, sample_rate: int, words: list[str]) -> np.ndarray:
    """(n, 2) intervals sharing the detected speech among ``words`` by their letter counts.

    Raises:
        ClipError: no speech detected.
    """
    speech = speech_intervals(samples, sample_rate)
    if len(speech) == 0:
        raise ClipError("no speech detected in the audio")
    lengths = speech[:, 1] - speech[:, 0]
    total = float(lengths.sum())
    weights = np.array([len(w) + 1 for w in words], dtype=np.float64)
    edges = np.concatenate([[0.0], np.cumsum(weights) / weights.sum() * total])  # on the speech-only clock
    starts_clock = np.concatenate([[0.0], np.cumsum(lengths)])

    def to_time(c: float) -> float:
        k = int(np.clip(np.searchsorted(starts_clock, c, side="right") - 1, 0, len(speech) - 1))
        return float(speech[k, 0] + (c - starts_clock[k]))

    return np.array([(to_time(edges[i]), to_time(edges[i + 1] - 1e-9)) for i in range(len(words))])
