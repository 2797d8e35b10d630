"""Griffin-Lim: the training-free baseline vocoder (pseudo-inverse mel, then phase retrieval)."""

from __future__ import annotations

import torch
import torchaudio

from voiceconv.features import FeatureConfig


class GriffinLim(torch.nn.Module):
    """mel: (B, n_mels, T) natural-log magnitude -> audio (B, T * hop) at the feature rate.

    F0 is accepted for the vocoder protocol but unused: Griffin-Lim only sees the harmonics
    that the mel spectrogram itself carries.
    """

    name = "griffin-lim"

    def __init__(self, config: FeatureConfig, n_iter: int = 32, momentum: float = 0.99) -> None:
        super().__init__()
        self.config = config
        fbank = torchaudio.functional.melscale_fbanks(
            config.n_fft // 2 + 1, config.fmin, config.fmax, config.n_mels, config.sample_rate,
            norm="slaney", mel_scale="slaney")  # (n_freqs, n_mels)
        self.register_buffer("inverse_fbank", torch.linalg.pinv(fbank.T))  # (n_freqs, n_mels)
        self.register_buffer("window", torch.hann_window(config.win_length))
        self.n_iter, self.momentum = n_iter, momentum

    @torch.no_grad()
    def render(self, mel: torch.Tensor, f0: torch.Tensor | None = None) -> torch.Tensor:
        hop = self.config.hop_length
        magnitude = (self.inverse_fbank @ mel.float().exp()).clamp_min(0.0)
        cfg = self.config
        audio = torchaudio.functional.griffinlim(
            magnitude, self.window, cfg.n_fft, hop, cfg.win_length, power=1.0,
            n_iter=self.n_iter, momentum=self.momentum, length=None,
            rand_init=False)
        # The inverse STFT gives (T - 1) * hop samples with frame i centred on sample i * hop;
        # ours is centred on (i + 1/2) * hop and T frames span T * hop samples.
        return torch.nn.functional.pad(audio, (hop // 2, hop - hop // 2))
