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
    """nn.Conv2d(c_in, 1, kernel, padding=kernel // 2), the same numbers computed faster.
    oneDNN runs a convolution with one output channel and a wide kernel badly, its weight
    gradient worst of all (the single most expensive kernel of a training step). Training on
    the CPU (outside autocast), the layer is a product of 2-D FFTs, forward and backward:
    2-3x faster than the convolutions below on training crops, equal to float rounding
    (about 8 % of a `small` step, benchmarks/train_step.py). Elsewhere it is conv2d, whose
    forward alone is 2-3x faster than the FFTs on a whole song, with the weight gradient as
    a convolution of the input (batch and channels swapped) and the output gradient as its
    kernel, about 4x faster than oneDNN's own.
    """

    def __init__(self, c_in: int, kernel: tuple[int, int]) -> None:
        super().__init__(c_in, 1, kernel, padding=(kernel[0] // 2, kernel[1] // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type == "cpu" and torch.is_grad_enabled()
                and not torch.is_autocast_enabled("cpu")):
            return _SingleOutputFFTConv.apply(x, self.weight, self.bias, self.padding)
        return _SingleOutputConv.apply(x, self.weight, self.bias, self.padding)


class _SingleOutputFFTConv(torch.autograd.Function):
    """y[b, h, t] = sum over c, i, j of w[c, i, j] * x_padded[b, c, h + i, t + j], a circular
    cross-correlation over the padded size, which is large enough that nothing wraps into
    the frames kept; its gradients are the matching correlation and convolution."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        (ph, pw), (height, width) = padding, x.shape[-2:]
        size = (height + 2 * ph, width + 2 * pw)
        x_spectrum = torch.fft.rfft2(nn.functional.pad(x, (pw, pw, ph, ph)))
        w_spectrum = torch.fft.rfft2(weight[0], s=size)
        y = torch.fft.irfft2((x_spectrum * w_spectrum.conj()).sum(1), s=size)
        ctx.save_for_backward(x_spectrum, w_spectrum)
        ctx.shapes = padding, (height, width), size, weight.shape[-2:]
        return (y[:, :height, :width] + bias)[:, None]

    @staticmethod
    def backward(ctx, grad):
        x_spectrum, w_spectrum = ctx.saved_tensors
        (ph, pw), (height, width), size, (kh, kw) = ctx.shapes
        g_spectrum = torch.fft.rfft2(grad[:, 0], s=size)
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.fft.irfft2(g_spectrum[:, None] * w_spectrum, s=size)
            grad_x = grad_x[:, :, ph: ph + height, pw: pw + width]
        grad_w = torch.fft.irfft2((x_spectrum * g_spectrum[:, None].conj()).sum(0), s=size)
        return grad_x, grad_w[None, :, :kh, :kw], grad.sum((0, 2, 3)), None


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
