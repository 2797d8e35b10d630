"""Griffin-Lim: the training-free baseline vocoder (pseudo-inverse mel, then phase retrieval)."""

from __future__ import annotations

import torch
import torchaudio

from voiceconv.core.envelope import mel_pseudo_inverse
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.models.vocoders.base import Vocoder


class GriffinLim(Vocoder):
    """Any feature config; F0 is unused: Griffin-Lim only hears the harmonics that the mel
    spectrogram itself carries. Deterministic (zero initial phase)."""

    name = "griffin-lim"
    context_frames = 16

    def __init__(self, config: FeatureConfig, n_iter: int = 32, momentum: float = 0.99) -> None:
        super().__init__(config)
        self.register_buffer("inverse_fbank", mel_pseudo_inverse(config))
        self.register_buffer("window", torch.hann_window(config.win_length))
        self.n_iter, self.momentum = n_iter, momentum

    def synthesise(self, mel: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        cfg, hop = self.feature_config, self.feature_config.hop_length
        magnitude = (self.inverse_fbank @ mel.exp()).clamp_min(0.0)
        audio = torchaudio.functional.griffinlim(
            magnitude, self.window, cfg.n_fft, hop, cfg.win_length, power=1.0,
            n_iter=self.n_iter, momentum=self.momentum, length=None, rand_init=False)
        # The inverse STFT gives (T - 1) * hop samples with frame i centred on sample i * hop;
        # ours is centred on (i + 1/2) * hop and T frames span T * hop samples.
        return torch.nn.functional.pad(audio, (hop // 2, hop - hop // 2))
