"""Word alignment as the CMU-MultimodalSDK does it: frames averaged inside each word."""

from __future__ import annotations

import warnings

import numpy as np


def average_frames_in_words(frames: np.ndarray, times: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """Average the frames whose time lies in each interval ``[start, end)``.

    NaN entries (e.g. facial geometry on frames without a face) are left out of a mean; a
    column that is NaN on every frame of a word stays NaN. A word shorter than the frame
    spacing takes the frame nearest to its midpoint.

    Args:
        frames: (T, F) frame features.
        times: (T,) frame times in seconds, increasing.
        intervals: (n, 2) word [start, end) in seconds.
    Returns:
        (n, F) float32.
    """
    n, f = len(intervals), frames.shape[1]
    out = np.full((n, f), np.nan, np.float32)
    if len(times) == 0:
        return out
    lo = np.searchsorted(times, intervals[:, 0], side="left")
    hi = np.searchsorted(times, intervals[:, 1], side="left")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        for i in range(n):
            if hi[i] > lo[i]:
                out[i] = np.nanmean(frames[lo[i]: hi[i]], axis=0)
            else:
                mid = 0.5 * (intervals[i, 0] + intervals[i, 1])
                out[i] = frames[int(np.argmin(np.abs(times - mid)))]
    return out
