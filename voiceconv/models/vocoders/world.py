"""WORLD synthesis driven by the given F0: training-free and exactly on pitch.

mel -> linear magnitude (pseudo-inverse of the mel filterbank) -> log power, smoothed along
frequency by cepstral liftering below the harmonic spacing (so the envelope has no harmonic
ripple) -> WORLD spectral envelope; aperiodicity from the voicing (a typical voiced-singing
profile, fully aperiodic when unvoiced); then pyworld's synthesis with our F0.

The harmonic spacing to smooth over is the wider of the F0 given and the one the mel's own
harmonics show. They differ whenever the mel was not made at the F0 given: a converted mel
carries the target singer's harmonics, a key shift moves the F0 alone. Smoothing over the
given F0 only would leave the mel's wider harmonic ripple in the envelope, and WORLD would
render it as a second pitch (an octave above, for a mel sung an octave higher). So the output
sings the F0 it is given and takes only the envelope, the timbre, from the mel.
"""

from __future__ import annotations

import numpy as np
import pyworld
import torch

from voiceconv.core.features import FeatureConfig
from voiceconv.models.vocoders.base import Vocoder, mel_pseudo_inverse

# Candidate harmonic spacings (Hz) of a mel, 1/32 octave apart, and the harmonics that score
# one: the first six, within the mel's band.
SPACING_CANDIDATES = 65.0 * 2 ** (np.arange(0, 141) / 32)
SPACING_HARMONICS = 6
# A frame's harmonic ripple counts when its peaks stand this far (mean log power) above the
# troughs between them; unvoiced frames of real singing score below it (their median 1.4).
RIPPLE_THRESHOLD = 3.0
# Median D4C aperiodicity (dB) of voiced frames of PJS singing at these frequencies (Hz).
VOICED_APERIODICITY_DB = ((0, -30.0), (500, -26.0), (2000, -16.0), (4000, -7.0),
                          (6000, -3.0), (8000, -1.7), (11025, -0.5))


class World(Vocoder):
    name = "world"
    context_frames = 16  # WORLD synthesis is frame-local apart from pulse positions
    uses_f0 = True
    # numpy and WORLD's C code run largely outside the GIL, and concurrent pyworld.synthesize
    # calls give the same output as sequential ones (checked, and tested through `render`).
    renders_chunks_in_threads = True

    def __init__(self, config: FeatureConfig, lifter_fraction: float = 0.7) -> None:
        super().__init__(config)
        self.register_buffer("inverse_fbank", mel_pseudo_inverse(config))
        window = torch.hann_window(config.win_length, dtype=torch.float64)
        # |STFT|^2 of a Hann-windowed frame -> WORLD's power spectral envelope (Parseval).
        self.power_scale = 1.0 / float((window**2).sum())
        self.lifter_fraction = lifter_fraction
        bin_hz = config.sample_rate / config.n_fft
        self.band_bins = (int(np.ceil(max(config.fmin, 150.0) / bin_hz)),
                          int(min(config.fmax, config.sample_rate / 2) / bin_hz))
        freqs = np.arange(config.n_fft // 2 + 1) * config.sample_rate / config.n_fft
        points = np.array(VOICED_APERIODICITY_DB)
        self.voiced_ap = 10 ** (np.interp(freqs, points[:, 0], points[:, 1]) / 10)

    def envelope(self, mel: torch.Tensor, f0: np.ndarray) -> np.ndarray:
        """mel: (n_mels, T) -> WORLD spectral envelope (T, n_fft // 2 + 1), float64.

        As in CheapTrick: average the power over one harmonic spacing first (so the envelope
        follows the harmonic peaks, not the valleys between them), then lifter the log.
        """
        cfg = self.feature_config
        # WORLD runs on the CPU whatever device the module was moved to.
        magnitude = (self.inverse_fbank.cpu() @ mel.exp()).clamp_min(1e-5).double()
        power = (magnitude**2).T.numpy()  # (T, n_freqs)
        n_freqs = power.shape[1]
        bin_hz = cfg.sample_rate / cfg.n_fft
        spacing = np.where(f0 > 0, np.maximum(f0, self.mel_harmonic_spacing(power)), 200.0)
        half = np.maximum(spacing / bin_hz / 2, 0.5)  # (T,) in bins
        padded = np.pad(power, ((0, 0), (n_freqs, n_freqs)), mode="reflect")
        cumulative = np.concatenate([np.zeros((len(f0), 1)), np.cumsum(padded, axis=1)], axis=1)
        centre = np.arange(n_freqs)[None, :] + n_freqs
        lo = np.clip(np.round(centre - half[:, None]).astype(int), 0, padded.shape[1] - 1)
        hi = np.clip(np.round(centre + half[:, None]).astype(int) + 1, 1, padded.shape[1])
        smooth_power = (np.take_along_axis(cumulative, hi, 1)
                        - np.take_along_axis(cumulative, lo, 1)) / (hi - lo)
        cepstrum = np.fft.irfft(np.log(np.maximum(smooth_power, 1e-12)), axis=1)
        n_fft = cepstrum.shape[1]
        period = np.where(f0 > 0, cfg.sample_rate / spacing, n_fft / 8)
        cutoff = np.maximum(self.lifter_fraction * period, 4).astype(int)
        q = np.minimum(np.arange(n_fft), n_fft - np.arange(n_fft))
        cepstrum[q[None, :] >= cutoff[:, None]] = 0.0
        envelope = np.exp(np.fft.rfft(cepstrum, axis=1).real) * self.power_scale
        # Outside the mel's band the pseudo-inverse knows nothing: hold the lowest reliable
        # value below it, and assume 20 dB less energy above fmax.
        low, high = self.band_bins
        envelope[:, :low] = envelope[:, low: low + 1]
        envelope[:, high:] = envelope[:, high - 1: high] * 1e-2
        return envelope

    def mel_harmonic_spacing(self, power: np.ndarray) -> np.ndarray:
        """(T, n_freqs) power of a mel's pseudo-inverse -> (T,) the spacing (Hz) of the
        harmonics it shows, 0 where it shows none. Each candidate spacing scores the mean log
        power at its first harmonics less that halfway between them; of the candidates within
        80 % of the best score, the widest wins (a sub-multiple of the true spacing scores
        nearly as well, and smoothing too little is the error that matters here)."""
        cfg = self.feature_config
        bin_hz = cfg.sample_rate / cfg.n_fft
        log_power = np.log(np.maximum(power, 1e-12))
        top = min(cfg.fmax, cfg.sample_rate / 2) - bin_hz
        scores = np.full((power.shape[0], len(SPACING_CANDIDATES)), -np.inf)
        for i, spacing in enumerate(SPACING_CANDIDATES):
            k = np.arange(1, SPACING_HARMONICS + 1)
            k = k[k * spacing < top]
            if len(k) < 2:
                break
            scores[:, i] = (_at(log_power, k * spacing / bin_hz)
                            - _at(log_power, (k - 0.5) * spacing / bin_hz)).mean(1)
        best = scores.max(1, keepdims=True)
        near_best = scores >= 0.8 * best
        widest = len(SPACING_CANDIDATES) - 1 - np.argmax(near_best[:, ::-1], axis=1)
        return np.where(best[:, 0] > RIPPLE_THRESHOLD, SPACING_CANDIDATES[widest], 0.0)

    def synthesise(self, mel: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        cfg, hop = self.feature_config, self.feature_config.hop_length
        frame_ms = 1000 * hop / cfg.sample_rate
        out = []
        for m, f in zip(mel.cpu(), f0.cpu().double().numpy(), strict=True):
            f = np.ascontiguousarray(f)
            sp = np.ascontiguousarray(self.envelope(m, f))
            ap = np.where(f[:, None] > 0, self.voiced_ap[None, :], 1.0)
            y = pyworld.synthesize(f, sp, ap, cfg.sample_rate, frame_ms)
            # WORLD frame k is at sample k * hop; ours is centred on (k + 1/2) * hop.
            frames = len(f)
            y = np.concatenate([np.zeros(hop // 2), y])[: frames * hop]
            y = np.pad(y, (0, frames * hop - len(y)))
            out.append(torch.from_numpy(y.astype(np.float32)))
        return torch.stack(out).to(mel.device)


def _at(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values (T, N) linearly interpolated at fractional indices positions (K,) -> (T, K)."""
    lo = np.floor(positions).astype(int)
    w = positions - lo
    return values[:, lo] * (1 - w) + values[:, lo + 1] * w
