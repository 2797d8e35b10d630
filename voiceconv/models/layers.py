"""Gated building blocks: every non-linearity here is a gated linear unit (GLU), which lets
the network pass pitch and phonetic structure through unchanged where it should."""

from __future__ import annotations

import torch
from torch import nn


class GatedConv2d(nn.Module):
    """conv -> instance norm -> GLU. x: (B, C_in, F, T) -> (B, C_out, F', T')."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 2 * c_out, kernel, stride, padding)
        self.norm = nn.InstanceNorm2d(2 * c_out, affine=True) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.glu(self.norm(self.conv(x)), dim=1)


class GatedUpsample2d(nn.Module):
    """conv -> pixel shuffle (x2 in both axes) -> instance norm -> GLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 2 * c_out * 4, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(2)
        self.norm = nn.InstanceNorm2d(2 * c_out, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.glu(self.norm(self.shuffle(self.conv(x))), dim=1)


class GatedResidualBlock1d(nn.Module):
    """x + IN(conv(GLU(IN(conv(x))))). x: (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Conv1d(channels, 2 * channels, kernel, padding=kernel // 2),
                                  nn.InstanceNorm1d(2 * channels, affine=True))
        self.out = nn.Sequential(nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
                                 nn.InstanceNorm1d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(nn.functional.glu(self.gate(x), dim=1))
