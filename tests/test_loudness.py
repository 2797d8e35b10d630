"""BS.1770 loudness and true peak against known reference signals."""

from __future__ import annotations

import numpy as np

from voiceconv.core.loudness import (
    integrated_loudness,
    k_weighting,
    normalize_loudness,
    true_peak_dbtp,
)


def sine(freq: float, sr: int, seconds: float, amplitude: float, phase: float = 0.0):
    t = np.arange(int(sr * seconds)) / sr
    return amplitude * np.sin(2 * np.pi * freq * t + phase)


def test_full_scale_997_hz_sine_reads_minus_3_01_lufs():
    # BS.1770: a 0 dBFS 997 Hz sine in one channel measures -3.01 LKFS.
    assert abs(integrated_loudness(sine(997, 48000, 5, 1.0), 48000) + 3.01) < 0.05


def test_true_peak_sees_inter_sample_peaks():
    # fs/4 sine at 45 degrees: every sample at +-0.707 but the waveform peaks at 1.0.
    x = sine(11025, 44100, 1, 1.0, np.pi / 4)
    assert 20 * np.log10(np.abs(x).max()) < -2.9
    assert abs(true_peak_dbtp(x, 44100)) < 0.2


def test_normalisation_hits_the_target_or_the_ceiling():
    sr = 22050
    voice = sine(220, sr, 3, 0.05)
    result = normalize_loudness(voice, sr, target_lufs=-23, ceiling_dbtp=-1)
    assert not result.peak_limited
    assert abs(integrated_loudness(result.audio, sr) + 23) < 0.05

    spiky = voice.copy()
    spiky[sr] = 0.9  # one huge spike: reaching -10 LUFS would push the peak far over -1 dBTP
    limited = normalize_loudness(spiky, sr, target_lufs=-10, ceiling_dbtp=-1)
    assert limited.peak_limited
    assert true_peak_dbtp(limited.audio, sr) <= -0.99


def test_k_weighting_matches_the_bs1770_coefficients_at_48k():
    (b1, a1), (b2, a2) = k_weighting(48000)
    assert np.allclose(b1, [1.53512485958697, -2.69169618940638, 1.19839281085285])
    assert np.allclose(a1, [1.0, -1.69065929318241, 0.73248077421585])
    assert np.allclose(b2, [1.0, -2.0, 1.0])
    assert np.allclose(a2, [1.0, -1.99004745483398, 0.99007225036621])


def test_streamed_loudness_does_not_depend_on_the_chunk_size():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(48000 * 7) * np.linspace(0.01, 0.5, 48000 * 7)).astype(np.float32)
    whole = integrated_loudness(x, 48000, chunk=1 << 30)
    assert abs(integrated_loudness(x, 48000, chunk=12345) - whole) < 1e-9
