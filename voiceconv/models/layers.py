"""Gated building blocks: every non-linearity here is a gated linear unit (GLU), which lets
the network pass pitch and phonetic structure through unchanged where it should."""

from __future__ import annotations

import torch
from torch import nn


def glu(x: torch.Tensor) -> torch.Tensor:
    """nn.functional.glu(x, dim=1), written out: on channels-last tensors its backward is
    about 2.5x faster than glu's own."""
    value, gate = x.chunk(2, dim=1)
    return value * torch.sigmoid(gate)


class GatedConv2d(nn.Module):
    """conv -> instance norm -> GLU. x: (B, C_in, F, T) -> (B, C_out, F', T')."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 2 * c_out, kernel, stride, padding)
        self.norm = nn.InstanceNorm2d(2 * c_out, affine=True) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return glu(self.norm(self.conv(x)))


class GatedUpsample2d(nn.Module):
    """conv -> pixel shuffle (x2 in both axes) -> instance norm -> GLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, 2 * c_out * 4, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(2)
        self.norm = nn.InstanceNorm2d(2 * c_out, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return glu(self.norm(self.shuffle(self.conv(x))))


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


class SingleOutputConv2d(nn.Conv2d):
    """nn.Conv2d(c_in, 1, kernel, padding=kernel // 2), the same numbers with a weight gradient
    that oneDNN computes about 4x faster on CPU: as a convolution of the input (batch and
    channels swapped) with the output gradient as its kernel. oneDNN's own backward for one
    output channel and a wide kernel was the single most expensive kernel of a training step.
    """

    def __init__(self, c_in: int, kernel: tuple[int, int]) -> None:
        super().__init__(c_in, 1, kernel, padding=(kernel[0] // 2, kernel[1] // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _SingleOutputConv.apply(x, self.weight, self.bias, self.padding)


class _SingleOutputConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return nn.functional.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        (ph, pw), grad_x = ctx.padding, None
        # Under autocast the forward ran in a lower precision than the weight's: so does this.
        x, weight_ = x.to(grad.dtype), weight.to(grad.dtype)
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight_, None, [1, 1], [ph, pw], [1, 1], False, [0, 0], 1,
                [True, False, False])[0]
        # dW[0, c, i, j] = sum over b, h, t of grad[b, 0, h, t] * x_padded[b, c, h + i, t + j],
        # in groups of 4 items (the time per item grows past that).
        padded = nn.functional.pad(x, (pw, pw, ph, ph))
        grad_w = sum(nn.functional.conv2d(padded[i: i + 4].transpose(0, 1),
                                          grad[i: i + 4].transpose(0, 1))
                     for i in range(0, len(x), 4)).transpose(0, 1)
        return grad_x, grad_w.to(weight.dtype), grad.sum((0, 2, 3)).to(weight.dtype), None
