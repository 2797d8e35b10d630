"""The spectral envelope of a log-mel: the timbre of a frame without its pitch.

A sung frame is an envelope (the vocal tract: the singer's timbre and the vowel) times the
harmonic comb of its F0 (the melody). Splitting the two lets a conversion change the timbre
while the melody stays the source's, and lets WORLD render an envelope at any F0.

mel -> linear magnitude (pseudo-inverse of the mel filterbank) -> power averaged over one
harmonic spacing (as in CheapTrick, so the envelope follows the harmonic peaks, not the
valleys between them) -> log, liftered below the harmonic period.

The spacing smoothed over is the wider of the F0 given and the one the mel's own harmonics
show. They differ whenever the mel was not made at the F0 given: a converted mel may carry
the target singer's harmonics, a key shift moves the F0 alone. Smoothing over the given F0
only would leave the mel's wider harmonic ripple in the envelope, and WORLD would render it
as a second pitch (an octave above, for a mel sung an octave higher).
"""

from __future__ import annotations

import numpy as np
import torch

from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.features import LogMelSpectrogram

# Candidate harmonic spacings (Hz) of a mel, 1/32 octave apart, and the harmonics that score
# one: the first six, within the mel's band.
SPACING_CANDIDATES = 65.0 * 2 ** (np.arange(0, 141) / 32)
SPACING_HARMONICS = 6
# A frame's harmonic ripple counts when its peaks stand this far (mean log power) above the
# troughs between them; unvoiced frames of real singing score below it (their median 1.4).
RIPPLE_THRESHOLD = 3.0
UNVOICED_SPACING_HZ = 200.0  # smoothing width of unvoiced frames


def mel_filterbank(config: FeatureConfig) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels): the filterbank of `LogMelSpectrogram`, taken from it."""
    return LogMelSpectrogram(config).mel.mel_scale.fb


def mel_pseudo_inverse(config: FeatureConfig) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels): maps a mel magnitude back to the least-squares linear one."""
    return torch.linalg.pinv(mel_filterbank(config).T)


class SpectralEnvelope:
    """Envelopes of log-mels (n_mels, T) with their F0 (T,) Hz, 0 = unvoiced."""

    def __init__(self, config: FeatureConfig, lifter_fraction: float = 0.7) -> None:
        self.config = config
        self.lifter_fraction = lifter_fraction
        self.inverse = mel_pseudo_inverse(config).double().numpy()
        self.fbank = mel_filterbank(config).double().numpy()
        self.bin_hz = config.sample_rate / config.n_fft

    def power(self, mel: np.ndarray | torch.Tensor, f0: np.ndarray) -> np.ndarray:
        """(n_mels, T) log-mel -> (T, n_fft // 2 + 1) power envelope, float64."""
        mel = mel.detach().cpu().double().numpy() if isinstance(mel, torch.Tensor) else mel
        f0 = np.asarray(f0, np.float64)
        magnitude = np.maximum(self.inverse @ np.exp(mel.astype(np.float64)), 1e-5)
        power = (magnitude**2).T
        n_freqs = power.shape[1]
        spacing = np.where(f0 > 0, np.maximum(f0, self.harmonic_spacing(power)),
                           UNVOICED_SPACING_HZ)
        half = np.maximum(spacing / self.bin_hz / 2, 0.5)  # (T,) in bins
        padded = np.pad(power, ((0, 0), (n_freqs, n_freqs)), mode="reflect")
        cumulative = np.concatenate([np.zeros((len(f0), 1)), np.cumsum(padded, axis=1)], axis=1)
        centre = np.arange(n_freqs)[None, :] + n_freqs
        lo = np.clip(np.round(centre - half[:, None]).astype(int), 0, padded.shape[1] - 1)
        hi = np.clip(np.round(centre + half[:, None]).astype(int) + 1, 1, padded.shape[1])
        smooth_power = (np.take_along_axis(cumulative, hi, 1)
                        - np.take_along_axis(cumulative, lo, 1)) / (hi - lo)
        cepstrum = np.fft.irfft(np.log(np.maximum(smooth_power, 1e-12)), axis=1)
        n_fft = cepstrum.shape[1]
        period = np.where(f0 > 0, self.config.sample_rate / spacing, n_fft / 8)
        cutoff = np.maximum(self.lifter_fraction * period, 4).astype(int)
        q = np.minimum(np.arange(n_fft), n_fft - np.arange(n_fft))
        cepstrum[q[None, :] >= cutoff[:, None]] = 0.0
        envelope = np.exp(np.fft.rfft(cepstrum, axis=1).real)
        # Below its F0 a voice shows nothing of its envelope (no harmonic is there): hold the
        # value at the F0, so that a voice that never sings low does not teach "no energy
        # down there" to a conversion whose source does.
        f0_bin = np.clip(np.round(f0 / self.bin_hz).astype(int), 0, n_freqs - 1)
        below = (np.arange(n_freqs)[None, :] < f0_bin[:, None]) & (f0 > 0)[:, None]
        return np.where(below, np.take_along_axis(envelope, f0_bin[:, None], 1), envelope)

    def log_mel(self, mel: np.ndarray | torch.Tensor, f0: np.ndarray) -> np.ndarray:
        """(n_mels, T) log-mel -> (n_mels, T) float32: its envelope, as a log-mel."""
        magnitude = np.sqrt(self.power(mel, f0))  # (T, n_freqs)
        envelope = self.fbank.T @ magnitude.T
        return np.log(np.maximum(envelope, self.config.log_floor)).astype(np.float32)

    def harmonic_spacing(self, power: np.ndarray) -> np.ndarray:
        """(T, n_freqs) power of a mel's pseudo-inverse -> (T,) the spacing (Hz) of the
        harmonics it shows, 0 where it shows none. Each candidate spacing scores the mean log
        power at its first harmonics less that halfway between them; of the candidates within
        80 % of the best score, the widest wins (a sub-multiple of the true spacing scores
        nearly as well, and smoothing too little is the error that matters here)."""
        cfg = self.config
        log_power = np.log(np.maximum(power, 1e-12))
        top = min(cfg.fmax, cfg.sample_rate / 2) - self.bin_hz
        scores = np.full((power.shape[0], len(SPACING_CANDIDATES)), -np.inf)
        for i, spacing in enumerate(SPACING_CANDIDATES):
            k = np.arange(1, SPACING_HARMONICS + 1)
            k = k[k * spacing < top]
            if len(k) < 2:
                break
            scores[:, i] = (_at(log_power, k * spacing / self.bin_hz)
                            - _at(log_power, (k - 0.5) * spacing / self.bin_hz)).mean(1)
        best = scores.max(1, keepdims=True)
        near_best = scores >= 0.8 * best
        widest = len(SPACING_CANDIDATES) - 1 - np.argmax(near_best[:, ::-1], axis=1)
        return np.where(best[:, 0] > RIPPLE_THRESHOLD, SPACING_CANDIDATES[widest], 0.0)


def shift_harmonics(fine: torch.Tensor, semitones: float, config: FeatureConfig) -> torch.Tensor:
    """A log-mel's harmonic structure (..., n_mels, T) moved up by `semitones` along frequency:
    what the mel bin at f held, the bin at f * 2^(semitones / 12) holds now. A bin that would
    read below the lowest or above the highest mel bin reads that edge bin."""
    if semitones == 0:
        return fine
    centres = _mel_centres_hz(config)
    position = np.interp(centres / 2 ** (semitones / 12), centres, np.arange(len(centres)))
    lo = np.minimum(np.floor(position).astype(int), len(centres) - 2)
    w = torch.from_numpy(position - lo).to(fine.device, fine.dtype)[:, None]
    return fine[..., lo, :] * (1 - w) + fine[..., lo + 1, :] * w


def _mel_centres_hz(config: FeatureConfig) -> np.ndarray:
    """(n_mels,) the centre frequency of each (Slaney-scale) mel filter."""
    f_sp, knee_hz, knee_mel, log_step = 200 / 3, 1000.0, 15.0, np.log(6.4) / 27

    def to_mel(hz: float) -> float:
        return hz / f_sp if hz < knee_hz else knee_mel + np.log(hz / knee_hz) / log_step

    mels = np.linspace(to_mel(config.fmin), to_mel(config.fmax), config.n_mels + 2)[1:-1]
    return np.where(mels < knee_mel, mels * f_sp, knee_hz * np.exp((mels - knee_mel) * log_step))


def _at(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values (T, N) linearly interpolated at fractional indices positions (K,) -> (T, K)."""
    lo = np.floor(positions).astype(int)
    w = positions - lo
    return values[:, lo] * (1 - w) + values[:, lo + 1] * w
