"""The 2-1-2D generator of CycleGAN-VC2 / MaskCycleGAN-VC, split into encoder and decoder.

encoder: mel+mask (B, 2, n_mels, T) -> gated 2-D conv -> two stride-2 gated 2-D down-samplings
         -> 1x1 conv to 1-D -> the first `encoder_blocks` gated 1-D residual blocks
         -> content (B, residual_channels, T / 4)
decoder: the remaining residual blocks -> 1x1 conv back to 2-D -> two x2 gated up-samplings
         (pixel shuffle) -> output conv -> mel (B, n_mels, T)
The time axis must be a multiple of 4 (two halvings); so must n_mels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from voiceconv.models.layers import (
    GatedConv2d,
    GatedResidualBlock1d,
    GatedUpsample2d,
    SingleOutputConv2d,
)


@dataclass(frozen=True)
class GeneratorConfig:
    n_mels: int = 80
    channels: int = 128  # after the input conv; down-sampling doubles it once
    residual_channels: int = 256
    residual_blocks: int = 6
    encoder_blocks: int = 3  # residual blocks that belong to the (pretrainable) encoder
    # Add the (visible) input to the output, with the output layer zero-initialised: the
    # generator starts as the identity, which in per-singer normalised features already is
    # a mean/variance timbre transfer, and learns only the difference. Not in the papers;
    # it is what makes short CPU trainings useful.
    global_residual: bool = False

    def __post_init__(self) -> None:
        if self.n_mels % 4:
            raise ValueError(f"n_mels must be a multiple of 4 (got {self.n_mels})")
        if not 0 <= self.encoder_blocks <= self.residual_blocks:
            raise ValueError("need 0 <= encoder_blocks <= residual_blocks")

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


SMALL = GeneratorConfig(channels=16, residual_channels=128, residual_blocks=4, encoder_blocks=2,
                        global_residual=True)
PAPER = GeneratorConfig()  # MaskCycleGAN-VC sizes


class Encoder(nn.Module):
    """x: (B, 2, n_mels, T) mel and mask -> content: (B, residual_channels, T // 4)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.input = GatedConv2d(2, c, (5, 15), padding=(2, 7), norm=False)
        self.down = nn.Sequential(GatedConv2d(c, 2 * c, 5, stride=2, padding=2),
                                  GatedConv2d(2 * c, 2 * c, 5, stride=2, padding=2))
        self.to_1d = nn.Sequential(
            nn.Conv1d(2 * c * (cfg.n_mels // 4), cfg.residual_channels, 1),
            nn.InstanceNorm1d(cfg.residual_channels, affine=True))
        self.blocks = nn.Sequential(*(GatedResidualBlock1d(cfg.residual_channels)
                                      for _ in range(cfg.encoder_blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(self.input(x))
        return self.blocks(self.to_1d(h.flatten(1, 2)))


class Decoder(nn.Module):
    """content: (B, residual_channels, T // 4) -> mel: (B, n_mels, T)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.freq = cfg.n_mels // 4
        self.blocks = nn.Sequential(*(GatedResidualBlock1d(cfg.residual_channels)
                                      for _ in range(cfg.residual_blocks - cfg.encoder_blocks)))
        self.to_2d = nn.Sequential(nn.Conv1d(cfg.residual_channels, 2 * c * self.freq, 1),
                                   nn.InstanceNorm1d(2 * c * self.freq, affine=True))
        self.up = nn.Sequential(GatedUpsample2d(2 * c, c), GatedUpsample2d(c, c))
        self.output = SingleOutputConv2d(c, (5, 15))
        if cfg.global_residual:
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        h = self.to_2d(self.blocks(content))
        h = h.view(h.shape[0], -1, self.freq, h.shape[-1])
        return self.output(self.up(h)).squeeze(1)


class Generator(nn.Module):
    """mel: (B, n_mels, T), mask: (B, 1, 1, T) or None -> converted mel (B, n_mels, T).

    The mask (1 = keep) hides frames of the input and is given as a second channel, as in
    MaskCycleGAN-VC; without one, nothing is hidden (inference).
    """

    def __init__(self, cfg: GeneratorConfig = SMALL) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        # oneDNN runs these small-channel 2-D convolutions about twice as fast on CPU in
        # channels-last (benchmarks/train_step.py); only the 4-D weights change layout.
        self.to(memory_format=torch.channels_last)

    def forward(self, mel: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(*self.encode(mel, mask))

    def encode(self, mel: torch.Tensor,
               mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(content: (B, residual_channels, T // 4), the visible mel: (B, n_mels, T))."""
        if mel.shape[-1] % 4:
            raise ValueError(f"frame count must be a multiple of 4 (got {mel.shape[-1]})")
        if mask is None:
            mask = torch.ones_like(mel[:, None, :1, :])
        mask = mask.expand(-1, 1, mel.shape[1], -1)
        x = torch.cat([mel[:, None] * mask, mask], dim=1)
        return self.encoder(x), x[:, 0]

    def decode(self, content: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        out = self.decoder(content)
        return out + visible if self.cfg.global_residual else out
