"""Waveform discriminators for vocoder training: multi-period (HiFi-GAN) and multi-resolution
spectrogram (UnivNet). Each returns, per sub-discriminator, its logits and the feature maps
used by the feature-matching loss."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrizations

LEAKY_SLOPE = 0.1
Outputs = tuple[list[torch.Tensor], list[list[torch.Tensor]]]


def _conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU conv stack then the output conv: (logits flattened, every layer's output)."""
    features = []
    for conv in convs:
        x = nn.functional.leaky_relu(conv(x), LEAKY_SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """Looks at every `period`-th sample: audio (B, N) folded to (B, 1, N / period, period)."""

    def __init__(self, period: int, channels: int = 32) -> None:
        super().__init__()
        self.period = period
        widths = [1, channels, 4 * channels, 16 * channels, 32 * channels, 32 * channels]
        self.convs = nn.ModuleList(
            parametrizations.weight_norm(nn.Conv2d(c_in, c_out, (5, 1), (3 if i < 4 else 1, 1),
                                                   padding=(2, 0)))
            for i, (c_in, c_out) in enumerate(zip(widths, widths[1:], strict=False)))
        self.post = parametrizations.weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pad = -audio.shape[-1] % self.period
        x = nn.functional.pad(audio, (0, pad), mode="reflect")
        return _conv_stack(self.convs, self.post, x.view(x.shape[0], 1, -1, self.period))


class ResolutionDiscriminator(nn.Module):
    """Looks at the linear magnitude spectrogram at one STFT resolution."""

    def __init__(self, n_fft: int, hop: int, win: int, channels: int = 32) -> None:
        super().__init__()
        self.n_fft, self.hop, self.win = n_fft, hop, win
        self.register_buffer("window", torch.hann_window(win), persistent=False)
        c = channels
        layers = [nn.Conv2d(1, c, (3, 9), padding=(1, 4))]
        layers += [nn.Conv2d(c, c, (3, 9), stride=(1, 2), padding=(1, 4)) for _ in range(3)]
        layers += [nn.Conv2d(c, c, (3, 3), padding=(1, 1))]
        self.convs = nn.ModuleList(parametrizations.weight_norm(layer) for layer in layers)
        self.post = parametrizations.weight_norm(nn.Conv2d(c, 1, (3, 3), padding=(1, 1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(audio.float(), self.n_fft, self.hop, self.win, self.window,
                          return_complex=True).abs()  # (B, F, T)
        return _conv_stack(self.convs, self.post, spec.transpose(1, 2)[:, None])  # (B,1,T,F)


class MultiDiscriminator(nn.Module):
    """Multi-period (periods 2, 3, 5, 7, 11) + multi-resolution (3 STFTs) discriminator."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11),
                 resolutions: tuple[tuple[int, int, int], ...] = (
                     (1024, 120, 600), (2048, 240, 1200), (512, 50, 240)),
                 period_channels: int = 32, resolution_channels: int = 32) -> None:
        super().__init__()
        self.subs = nn.ModuleList(
            [PeriodDiscriminator(p, period_channels) for p in periods]
            + [ResolutionDiscriminator(*r, resolution_channels) for r in resolutions])

    def forward(self, audio: torch.Tensor) -> Outputs:
        logits, features = [], []
        for sub in self.subs:
            out, feats = sub(audio)
            logits.append(out)
            features.append(feats)
        return logits, features


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Least squares: real -> 1, fake -> 0."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for r, f in zip(real, fake,
                                                                            strict=True))


def generator_adversarial_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    return sum(torch.mean((1 - f) ** 2) for f in fake)


def feature_matching_loss(real: list[list[torch.Tensor]],
                          fake: list[list[torch.Tensor]]) -> torch.Tensor:
    return sum(torch.mean(torch.abs(r.detach() - f))
               for rs, fs in zip(real, fake, strict=True) for r, f in zip(rs, fs, strict=True))
