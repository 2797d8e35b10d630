"""PatchGAN 2-D discriminator: one real/fake score per time-frequency patch, so the
generator is judged on local spectral texture everywhere rather than on one global score."""

from __future__ import annotations

import torch
from torch import nn

from voiceconv.models.layers import GatedConv2d


class PatchDiscriminator(nn.Module):
    """mel: (B, n_mels, T) -> patch scores (B, 1, n_mels / 2^k, T / 2^k')."""

    def __init__(self, channels: int = 128, downsamples: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [GatedConv2d(1, channels, 3, padding=1, norm=False)]
        c = channels
        for _ in range(downsamples):
            layers.append(GatedConv2d(c, 2 * c, 3, stride=2, padding=1))
            c *= 2
        # A last gated block at the coarsest resolution, then one score per patch.
        layers += [GatedConv2d(c, c, 5, padding=2),
                   nn.Conv2d(c, 1, (1, 3), padding=(0, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel[:, None])
