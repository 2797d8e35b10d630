"""WORLD synthesis driven by the given F0: training-free and exactly on pitch.

The spectral envelope of the mel (`voiceconv.core.envelope`: harmonic ripple smoothed away,
whether it is the given F0's or another one's) -> WORLD spectral envelope; aperiodicity from
the voicing (a typical voiced-singing profile, fully aperiodic when unvoiced); then pyworld's
synthesis with our F0. So the output sings the F0 it is given and takes only the envelope,
the timbre, from the mel.
"""

from __future__ import annotations

import numpy as np
import pyworld
import torch

from voiceconv.core.envelope import SpectralEnvelope
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.models.vocoders.base import Vocoder

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
    # WORLD interpolates F0 linearly between the values it is given, from 0 next to an
    # unvoiced one. One value per frame (11.6 ms at the default hop) cuts fast glides into
    # straight lines and ends every voiced stretch in a half-frame slide toward half its
    # pitch (and starts it with one up). Four per frame shorten both fourfold; the envelope
    # stays per frame.
    f0_subframes = 4

    def __init__(self, config: FeatureConfig, lifter_fraction: float = 0.7) -> None:
        super().__init__(config)
        self.analysis = SpectralEnvelope(config, lifter_fraction)
        window = torch.hann_window(config.win_length, dtype=torch.float64)
        # |STFT|^2 of a Hann-windowed frame -> WORLD's power spectral envelope (Parseval).
        self.power_scale = 1.0 / float((window**2).sum())
        bin_hz = config.sample_rate / config.n_fft
        self.band_bins = (int(np.ceil(max(config.fmin, 150.0) / bin_hz)),
                          int(min(config.fmax, config.sample_rate / 2) / bin_hz))
        freqs = np.arange(config.n_fft // 2 + 1) * config.sample_rate / config.n_fft
        points = np.array(VOICED_APERIODICITY_DB)
        self.voiced_ap = 10 ** (np.interp(freqs, points[:, 0], points[:, 1]) / 10)

    def envelope(self, mel: torch.Tensor, f0: np.ndarray) -> np.ndarray:
        """mel: (n_mels, T) -> WORLD spectral envelope (T, n_fft // 2 + 1), float64."""
        envelope = self.analysis.power(mel, f0) * self.power_scale
        # Outside the mel's band the pseudo-inverse knows nothing: hold the lowest reliable
        # value below it, and assume 20 dB less energy above fmax.
        low, high = self.band_bins
        envelope[:, :low] = envelope[:, low: low + 1]
        envelope[:, high:] = envelope[:, high - 1: high] * 1e-2
        return envelope

    def synthesise(self, mel: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        """f0 may hold `f0_subframes` values per frame (T * f0_subframes): the envelope is
        the mel's, interpolated between frames as WORLD itself does, and the pitch follows
        the finer track."""
        cfg, hop = self.feature_config, self.feature_config.hop_length
        frames = mel.shape[-1]
        per_frame = f0.shape[-1] // frames
        if f0.shape[-1] != frames * per_frame:
            raise ValueError(f"f0 must have a whole number of values per frame; got "
                             f"{f0.shape[-1]} for {frames} frames")
        period_ms = 1000 * hop / cfg.sample_rate / per_frame
        out = []
        for m, f in zip(mel.cpu(), f0.cpu().double().numpy(), strict=True):
            f = np.ascontiguousarray(f)
            sp = np.ascontiguousarray(upsample_frames(self.envelope(m, f[::per_frame]),
                                                      per_frame))
            ap = np.where(f[:, None] > 0, self.voiced_ap[None, :], 1.0)
            y = pyworld.synthesize(f, sp, ap, cfg.sample_rate, period_ms)
            # WORLD frame k is at sample k * hop; ours is centred on (k + 1/2) * hop.
            y = np.concatenate([np.zeros(hop // 2), y])[: frames * hop]
            y = np.pad(y, (0, frames * hop - len(y)))
            out.append(torch.from_numpy(y.astype(np.float32)))
        return torch.stack(out).to(mel.device)


def upsample_frames(frames: np.ndarray, factor: int) -> np.ndarray:
    """(T, D) -> (T * factor, D), linear between frames and held after the last: the values
    WORLD's synthesis would interpolate at those instants from the coarser grid."""
    if factor == 1:
        return frames
    position = np.arange(frames.shape[0] * factor) / factor
    below = np.minimum(position.astype(np.int64), frames.shape[0] - 1)
    above = np.minimum(below + 1, frames.shape[0] - 1)
    weight = (position - below)[:, None]
    return frames[below] * (1 - weight) + frames[above] * weight
