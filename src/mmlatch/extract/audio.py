"""Audio frame features with librosa: MFCC, pitch and voicing, energy, spectral shape.

Frames every ``hop_s`` seconds (10 ms), 25 ms windows, at the spec's sample rate (16 kHz).
Per frame, in this order (``AUDIO_FEATURES``): ``mfcc_1`` ... ``mfcc_13``; ``log_f0``
(natural log of the YIN pitch in Hz on voiced frames, 0 elsewhere); ``voiced`` (1/0: the
frame's energy is within 35 dB of the clip's loudest frame and its YIN aperiodicity is
low); ``rms_db``; ``spectral_centroid`` (kHz); ``spectral_flatness``; ``zcr``. COVAREP (the
CMU features) is MATLAB-only: this is an open, installable stand-in with named columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmlatch.extract.errors import ExtractError
from mmlatch.extract.registry import package_version, register_extractor

N_MFCC = 13
AUDIO_FEATURES: list[str] = [f"mfcc_{i + 1}" for i in range(N_MFCC)] + [
    "log_f0", "voiced", "rms_db", "spectral_centroid", "spectral_flatness", "zcr",
]


def audio_frames(samples: np.ndarray, sample_rate: int, hop_s: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Frame features of a mono signal.

    Args:
        samples: (T,) float32 mono audio.
        sample_rate: its rate in Hz.
        hop_s: seconds between frames.
    Returns:
        features (n_frames, len(AUDIO_FEATURES)) float32 and the centre time of each frame (n_frames,).
    """
    import librosa

    hop = int(round(hop_s * sample_rate))
    win = int(round(0.025 * sample_rate))
    n_fft = 1 << (win - 1).bit_length()
    y = np.asarray(samples, dtype=np.float32)
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    kw = dict(n_fft=n_fft, hop_length=hop, win_length=win, center=True)
    mfcc = librosa.feature.mfcc(y=y, sr=sample_rate, n_mfcc=N_MFCC, n_mels=40, **kw)  # (13, n)
    rms = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop, center=True)[0]
    rms_db = librosa.amplitude_to_db(rms, ref=1.0, top_db=None)
    centroid = librosa.feature.spectral_centroid(y=y, sr=sample_rate, **kw)[0] / 1000.0
    flatness = librosa.feature.spectral_flatness(y=y, **kw)[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop, center=True)[0]
    # YIN needs two periods of the lowest pitch inside its frame: 2 * 16000 / 65 ~ 500 samples.
    frame_length = 1024 if sample_rate <= 22050 else 2048
    f0 = librosa.yin(y, fmin=65.0, fmax=500.0, sr=sample_rate, frame_length=frame_length, hop_length=hop, center=True)
    n = min(mfcc.shape[1], rms.size, f0.size)
    loud = rms_db[:n] > (rms_db[:n].max() - 35.0)
    # YIN returns fmax-ish values for unvoiced frames; treat pitches at the search edges as unvoiced
    voiced = loud & (f0[:n] > 66.0) & (f0[:n] < 490.0) & (flatness[:n] < 0.3)
    log_f0 = np.where(voiced, np.log(np.maximum(f0[:n], 1.0)), 0.0)
    feats = np.concatenate(
        [mfcc[:, :n], log_f0[None], voiced[None].astype(np.float32), rms_db[None, :n],
         centroid[None, :n], flatness[None, :n], zcr[None, :n]],
        axis=0,
    ).T.astype(np.float32)  # (n, F)
    times = (np.arange(n) * hop) / sample_rate
    return feats, times


@register_extractor("audio", "librosa")
class LibrosaAudio:
    """Audio extractor ``librosa``: the 19 ``AUDIO_FEATURES`` every ``hop_s`` seconds (ISC licence)."""

    name, version, needs = "librosa", "1", "audio"
    sha256 = None

    def __init__(self, hop_s: float = 0.01, window_s: float = 0.025, **unknown: Any) -> None:
        if unknown or window_s != 0.025:
            raise ExtractError(f"audio extractor librosa: unknown settings {sorted(unknown) or window_s}")
        self.hop_s = float(hop_s)
        self.dim = len(AUDIO_FEATURES)
        self.feature_names = list(AUDIO_FEATURES)
        self.identity = f"librosa=={package_version('librosa')}"

    def settings(self) -> dict[str, Any]:
        return {"hop_s": self.hop_s, "window_s": 0.025, "frame_rate": round(1 / self.hop_s, 6)}

    def frames(self, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        return audio_frames(samples, sample_rate, self.hop_s)
