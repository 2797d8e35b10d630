"""ITU-R BS.1770 integrated loudness, true peak, and loudness normalisation with a peak ceiling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyloudnorm
from scipy.signal import resample_poly

# BS.1770 gating needs at least one 400 ms block.
MIN_LOUDNESS_DURATION_S = 0.4


def integrated_loudness(x: np.ndarray, sample_rate: int) -> float:
    """Gated integrated loudness in LUFS of mono `x`; -inf for silence."""
    if x.shape[0] < MIN_LOUDNESS_DURATION_S * sample_rate:
        raise ValueError(f"need at least {MIN_LOUDNESS_DURATION_S} s to measure loudness")
    meter = pyloudnorm.Meter(sample_rate)
    with np.errstate(divide="ignore"):
        return float(meter.integrated_loudness(x.astype(np.float64)))


def true_peak_dbtp(x: np.ndarray, sample_rate: int, chunk: int = 1 << 18) -> float:
    """True peak in dBTP: the peak of the signal oversampled to >= 176.4 kHz (BS.1770-4 annex 2).

    Processed in overlapping chunks so a long file never needs its oversampled copy in memory.
    """
    factor = max(1, int(np.ceil(176_400 / sample_rate)))
    if factor == 1 or x.size == 0:
        peak = float(np.max(np.abs(x), initial=0.0))
    else:
        context = 64
        peak = 0.0
        for start in range(0, x.shape[0], chunk):
            lo, hi = max(0, start - context), min(x.shape[0], start + chunk + context)
            up = resample_poly(x[lo:hi].astype(np.float64), factor, 1)
            core = up[(start - lo) * factor: (start - lo + min(chunk, x.shape[0] - start)) * factor]
            peak = max(peak, float(np.max(np.abs(core), initial=0.0)))
    return 20 * np.log10(peak) if peak > 0 else -np.inf


@dataclass(frozen=True)
class LoudnessResult:
    audio: np.ndarray
    gain_db: float
    loudness_lufs: float
    true_peak_dbtp: float
    peak_limited: bool  # True when the ceiling, not the target, set the gain


def normalize_loudness(x: np.ndarray, sample_rate: int, target_lufs: float,
                       ceiling_dbtp: float) -> LoudnessResult:
    """Scale `x` to `target_lufs`, or less where that would push the true peak past the ceiling."""
    before = integrated_loudness(x, sample_rate)
    peak = true_peak_dbtp(x, sample_rate)
    if not np.isfinite(before):
        raise ValueError("cannot normalise silence")
    gain_db = target_lufs - before
    limited = peak + gain_db > ceiling_dbtp
    if limited:
        gain_db = ceiling_dbtp - peak
    y = (x * 10 ** (gain_db / 20)).astype(np.float32)
    return LoudnessResult(y, gain_db, before + gain_db, peak + gain_db, limited)
