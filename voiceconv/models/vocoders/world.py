"""WORLD synthesis driven by the given F0: training-free and exactly on pitch.

mel -> linear magnitude (pseudo-inverse of the mel filterbank) -> log power, smoothed along
frequency by cepstral liftering below the harmonic spacing (so the envelope has no harmonic
ripple) -> WORLD spectral envelope; aperiodicity from the voicing (a typical voiced-singing
profile, fully aperiodic when unvoiced); then pyworld's synthesis with our F0.
"""

from __future__ import annotations

import numpy as np
import pyworld
import torch

from voiceconv.core.features import FeatureConfig
from voiceconv.models.vocoders.base import Vocoder, mel_pseudo_inverse

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
        half = np.maximum(np.where(f0 > 0, f0, 200.0) / bin_hz / 2, 0.5)  # (T,) in bins
        padded = np.pad(power, ((0, 0), (n_freqs, n_freqs)), mode="reflect")
        cumulative = np.concatenate([np.zeros((len(f0), 1)), np.cumsum(padded, axis=1)], axis=1)
        centre = np.arange(n_freqs)[None, :] + n_freqs
        lo = np.clip(np.round(centre - half[:, None]).astype(int), 0, padded.shape[1] - 1)
        hi = np.clip(np.round(centre + half[:, None]).astype(int) + 1, 1, padded.shape[1])
        smooth_power = (np.take_along_axis(cumulative, hi, 1)
                        - np.take_along_axis(cumulative, lo, 1)) / (hi - lo)
        cepstrum = np.fft.irfft(np.log(np.maximum(smooth_power, 1e-12)), axis=1)
        n_fft = cepstrum.shape[1]
        period = np.where(f0 > 0, cfg.sample_rate / np.maximum(f0, 1.0), n_fft / 8)
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
