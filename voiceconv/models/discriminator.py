"""PatchGAN 2-D discriminator: one real/fake score per time-frequency patch, so the
generator is judged on local spectral texture everywhere rather than on one global score.
Laid out as CycleGAN-VC2's: a gated 3x3 conv, stride-2 gated 3x3 down-samplings, a gated
1x5 (frequency x time) block at the coarsest resolution and a 1x3 output conv."""

from __future__ import annotations

import torch
from torch import nn

from voiceconv.models.layers import GatedConv2d


class PatchDiscriminator(nn.Module):
    """mel: (B, n_mels, T) -> patch scores (B, 1, n_mels / 2^k, T / 2^k')."""

    def __init__(self, channels: int = 128, downsamples: int = 3,
                 last_kernel: tuple[int, int] = (1, 5)) -> None:
        super().__init__()
        last_kernel = tuple(last_kernel)
        layers: list[nn.Module] = [GatedConv2d(1, channels, 3, padding=1, norm=False)]
        c = channels
        for _ in range(downsamples):
            layers.append(GatedConv2d(c, 2 * c, 3, stride=2, padding=1))
            c *= 2
        # A last gated block at the coarsest resolution (the paper's 1x5; a 5x5 block costs
        # five times as much, most of a discriminator's work), then one score per patch.
        layers += [GatedConv2d(c, c, last_kernel, padding=(last_kernel[0] // 2,
                                                          last_kernel[1] // 2)),
                   nn.Conv2d(c, 1, (1, 3), padding=(0, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel[:, None])
