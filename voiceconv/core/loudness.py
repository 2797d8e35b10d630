"""ITU-R BS.1770 integrated loudness, true peak, and loudness normalisation with a peak ceiling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter, lfilter_zi, resample_poly

# BS.1770 gating needs at least one 400 ms block.
MIN_LOUDNESS_DURATION_S = 0.4


def k_weighting(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two BS.1770 K-weighting biquads (high shelf, then RLB high-pass) at any rate,
    by the bilinear transform of their analogue prototypes (as libebur128 derives them)."""
    k = np.tan(np.pi * 1681.974450955533 / sample_rate)
    q, vh = 0.7071752369554196, 10 ** (3.999843853973347 / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = (np.array([vh + vb * k / q + k * k, 2 * (k * k - vh), vh - vb * k / q + k * k]) / a0,
             np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    k, q = np.tan(np.pi * 38.13547087602444 / sample_rate), 0.5003270373238773
    a0 = 1 + k / q + k * k
    highpass = (np.array([1.0, -2.0, 1.0]),
                np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    return [shelf, highpass]


def integrated_loudness(x: np.ndarray, sample_rate: int, chunk: int = 1 << 18) -> float:
    """Gated integrated loudness (BS.1770-4) in LUFS of mono `x`; -inf for silence.

    Streamed: the K-weighting runs chunk by chunk with carried filter state and only the
    mean square of each 100 ms step is kept, so a long file needs no float64 copy.
    """
    step = round(0.1 * sample_rate)  # 400 ms blocks overlapping by 75 %: four 100 ms steps
    if x.shape[0] < 4 * step:
        raise ValueError(f"need at least {MIN_LOUDNESS_DURATION_S} s to measure loudness")
    filters = k_weighting(sample_rate)
    states = [lfilter_zi(b, a) * 0.0 for b, a in filters]
    n_steps = x.shape[0] // step
    energy = np.zeros(n_steps)
    carry = np.zeros(0)
    done = 0
    for start in range(0, n_steps * step, chunk):
        y = x[start: min(start + chunk, n_steps * step)].astype(np.float64)
        for i, (b, a) in enumerate(filters):
            y, states[i] = lfilter(b, a, y, zi=states[i])
        y = np.concatenate([carry, y])
        whole = y.shape[0] // step
        energy[done: done + whole] = np.mean(y[: whole * step].reshape(whole, step) ** 2, axis=1)
        carry, done = y[whole * step:], done + whole
    blocks = np.convolve(energy, np.ones(4) / 4, mode="valid")
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(blocks)
    gated = blocks[block_lufs > -70.0]
    if gated.size == 0:
        return -np.inf
    relative = -0.691 + 10 * np.log10(gated.mean()) - 10.0
    gated = blocks[block_lufs > max(relative, -70.0)]
    return float(-0.691 + 10 * np.log10(gated.mean()))


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
