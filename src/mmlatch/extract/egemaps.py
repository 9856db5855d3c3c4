"""Audio extractor ``egemaps``: openSMILE's eGeMAPSv02 low-level descriptors.

The 25 descriptors of the extended Geneva Minimalistic Acoustic Parameter Set (Eyben et al.,
2016) every 10 ms: loudness, spectral slope/balance (alpha ratio, Hammarberg index, slopes
0-500 and 500-1500 Hz, spectral flux, MFCC 1-4), and on voiced frames F0 (semitones from
27.5 Hz), jitter, shimmer, HNR, H1-H2, H1-A3 and formants F1-F3 (frequency, bandwidth,
amplitude); the voiced-only ones are 0 on unvoiced frames, as openSMILE writes them. Word
alignment averages them inside each word like every audio extractor.

openSMILE (the C++ library the PyPI package ``opensmile`` bundles) is audEERING's, free for
research and personal use only (commercial use needs a licence from audEERING).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmlatch.extract.errors import ExtractError
from mmlatch.extract.registry import package_version, register_extractor


@register_extractor("audio", "egemaps")
class EGeMAPSAudio:
    """eGeMAPSv02 LLDs (25 columns, 100 frames/s), computed by openSMILE."""

    name, version, needs = "egemaps", "1", "audio"
    sha256 = None
    FEATURE_SET = "eGeMAPSv02"

    def __init__(self, feature_set: str = FEATURE_SET, level: str = "lld", **unknown: Any) -> None:
        if unknown or feature_set != self.FEATURE_SET or level != "lld":
            raise ExtractError(f"audio extractor egemaps: unknown settings {sorted(unknown) or [feature_set, level]}")
        try:
            import opensmile
        except ImportError as e:
            raise ExtractError("audio extractor egemaps needs opensmile: pip install 'mmlatch[extract]'") from e
        self._smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
        )
        self.feature_names = [str(c) for c in self._smile.feature_names]
        self.dim = len(self.feature_names)
        self.identity = f"opensmile=={package_version('opensmile')}"

    def settings(self) -> dict[str, Any]:
        return {"feature_set": self.FEATURE_SET, "level": "lld", "frame_rate": 100.0}

    def frames(self, samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, 25) float32 LLDs of mono ``samples`` and each frame's centre time (T,)."""
        y = np.asarray(samples, dtype=np.float32)
        if y.size < sample_rate // 10:  # openSMILE needs a few 60 ms windows
            y = np.pad(y, (0, sample_rate // 10 - y.size))
        df = self._smile.process_signal(y, sample_rate)
        start = df.index.get_level_values("start").total_seconds().to_numpy()
        end = df.index.get_level_values("end").total_seconds().to_numpy()
        return df.to_numpy(np.float32), (start + end) / 2
