"""NSF-HiFi-GAN: a HiFi-GAN generator driven by a neural source-filter excitation, so that,
once trained to use it, the pitch of the output follows the given F0 instead of what the mel's
harmonics suggest (`voiceconv.models.vocoders.f0_response` measures whether it does).

source: F0 (frames) -> per-sample phase -> sines at harmonics 1..H (voiced) plus noise ->
        one excitation channel (learned mix, tanh)
filter: the HiFi-GAN generator; before the residual stacks of each up-sampling stage the
        excitation, down-sampled to that stage's rate by a strided conv, is added.

Initialised from the universal HiFi-GAN, the injection convs start at zero, so the V1-sized NSF
generator renders exactly what the universal one does; fine-tuning teaches it to use the source
(`val/f0_response_cents` in training shows when it does). Trained from scratch (the small
config), they start at PyTorch's default scale, so the filter has the source from its first
step. The lite config keeps V1's widths but only its kernel-3 residual stacks: all of its
filter comes from the universal weights, yet the cut changes the sound so much that fine-tuning
rebuilds it, around the source.

Phase is integrated from absolute time zero and the noise is read from a fixed table at
absolute sample positions, so chunked rendering equals one-shot rendering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from voiceconv.core.checkpoint import build_from_checkpoint, load_plain
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.models.vocoders.base import Vocoder
from voiceconv.models.vocoders.channels_last import Conv1d
from voiceconv.models.vocoders.hifigan import (
    NEURAL_CHUNK_FRAMES,
    HiFiGANConfig,
    HiFiGANGenerator,
    mean_of_stacks,
    receptive_frames,
)

NOISE_TABLE = 1 << 16  # samples of fixed noise per harmonic (inference)


@dataclass(frozen=True)
class NSFConfig(HiFiGANConfig):
    harmonics: int = 8
    sine_amplitude: float = 0.1
    noise_std: float = 0.003  # of the noise added to voiced sines (unvoiced: amplitude / 3)


# V1-sized (fine-tuned from the universal HiFi-GAN) and a V2-sized one for fast CPU rendering.
NSF_V1 = NSFConfig()
NSF_SMALL = NSFConfig(upsample_initial_channel=128)
# V1 widths with only the kernel-3 residual stacks (a seventh of V1's MRF compute): every
# tensor it has is a universal one, so it is fine-tuned rather than trained from scratch.
NSF_LITE = NSFConfig(resblock_kernel_sizes=(3,), resblock_dilations=((1, 3, 5),))


class SineSource(nn.Module):
    """F0 (B, T) in Hz on the frame grid -> excitation (B, 1, T * hop)."""

    def __init__(self, cfg: NSFConfig, sample_rate: int, hop: int) -> None:
        super().__init__()
        self.cfg, self.sample_rate, self.hop = cfg, sample_rate, hop
        self.merge = nn.Linear(cfg.harmonics, 1)
        noise = torch.randn(cfg.harmonics, NOISE_TABLE, generator=torch.Generator().manual_seed(0))
        self.register_buffer("noise_table", noise, persistent=False)

    def harmonics(self, f0: torch.Tensor, phase0: torch.Tensor | None = None) -> torch.Tensor:
        """Sines (B, H, N) of harmonics 1..H; `phase0` (B,) in cycles at the first sample.

        Phase is accumulated in float64 and wrapped: over minutes of audio float32 would
        lose the fraction that matters."""
        f0_samples = f0.double().repeat_interleave(self.hop, dim=-1)  # (B, N)
        cycles = torch.cumsum(f0_samples / self.sample_rate, dim=-1)
        cycles = cycles - f0_samples / self.sample_rate  # phase at a sample excludes itself
        if phase0 is not None:
            cycles = cycles + phase0.double()[:, None]
        k = torch.arange(1, self.cfg.harmonics + 1, device=f0.device, dtype=torch.float64)
        phase = torch.frac(cycles[:, None, :] * k[None, :, None])
        return torch.sin(2 * math.pi * phase).float()

    def forward(self, f0: torch.Tensor, phase0: torch.Tensor | None = None,
                sample_offset: int = 0, rng: torch.Generator | None = None) -> torch.Tensor:
        cfg = self.cfg
        sines = self.harmonics(f0, phase0)  # (B, H, N)
        voiced = (f0 > 0).repeat_interleave(self.hop, dim=-1)[:, None, :].float()
        n = sines.shape[-1]
        if rng is not None:  # training: fresh noise
            noise = torch.randn(sines.shape, generator=rng).to(sines.device)
        else:  # inference: the same noise at the same absolute sample, whatever the chunking
            index = (sample_offset + torch.arange(n, device=f0.device)) % NOISE_TABLE
            noise = self.noise_table[:, index][None].expand_as(sines)
        noise_amp = voiced * cfg.noise_std + (1 - voiced) * cfg.sine_amplitude / 3
        excitation = cfg.sine_amplitude * sines * voiced + noise_amp * noise
        return torch.tanh(self.merge(excitation.transpose(1, 2))).transpose(1, 2)


class NSFHiFiGANGenerator(HiFiGANGenerator):
    """(mel (B, n_mels, T), f0 (B, T)) -> audio (B, T * hop). Parameter names of the filter
    are HiFi-GAN's, so the universal weights load where shapes match."""

    def __init__(self, cfg: NSFConfig, sample_rate: int) -> None:
        super().__init__(cfg)
        hop = math.prod(cfg.upsample_rates)
        self.source = SineSource(cfg, sample_rate, hop)
        self.noise_convs = nn.ModuleList()
        c = cfg.upsample_initial_channel
        for i in range(len(cfg.upsample_rates)):
            stride = math.prod(cfg.upsample_rates[i + 1:])
            channels = c // 2 ** (i + 1)
            self.noise_convs.append(
                Conv1d(1, channels, 2 * stride, stride=stride, padding=stride // 2)
                if stride > 1 else Conv1d(1, channels, 1))

    def forward(self, mel: torch.Tensor, f0: torch.Tensor, phase0: torch.Tensor | None = None,
                sample_offset: int = 0, rng: torch.Generator | None = None) -> torch.Tensor:
        excitation = self.source(f0, phase0, sample_offset, rng)
        x = self.conv_pre(mel)
        n = len(self.cfg.resblock_kernel_sizes)
        for i, (up, inject) in enumerate(zip(self.ups, self.noise_convs, strict=True)):
            x = up(nn.functional.leaky_relu(x, 0.1)).add_(inject(excitation))
            x = mean_of_stacks(self.resblocks[i * n: (i + 1) * n], x)
        x = self.conv_post(nn.functional.leaky_relu(x))
        return torch.tanh(x).squeeze(1)

    def init_from_universal(self, injection_scale: float = 0.0) -> tuple[int, int]:
        """Copy the universal HiFi-GAN V1 weights into every parameter of the same name and
        shape, and scale the source injections' initial weights by `injection_scale` (0: the
        output is exactly the universal one's); returns (copied, total) tensor counts of the
        universal checkpoint."""
        from voiceconv.models.vocoders.hifigan import universal_weights_path

        universal = HiFiGANGenerator(HiFiGANConfig())
        checkpoint = load_plain(str(universal_weights_path()))
        universal.load_original(checkpoint["generator"])
        mine = self.state_dict()
        theirs = universal.state_dict()
        matching = {}
        for key in mine:
            source = _universal_name(key, self.cfg, universal.cfg)
            if source in theirs and theirs[source].shape == mine[key].shape:
                matching[key] = theirs[source]
        self.load_state_dict(matching, strict=False)
        # Zero injections keep the universal output exactly (and the filter keeps singing from
        # the mel); at PyTorch's default scale (1) the source swamps it and fine-tuning has to
        # rebuild the output around it.
        with torch.no_grad():
            for conv in self.noise_convs:
                conv.weight.mul_(injection_scale)
                conv.bias.mul_(injection_scale)
        return len(matching), len(theirs)


def _universal_name(key: str, mine: HiFiGANConfig, theirs: HiFiGANConfig) -> str | None:
    """The universal generator's name for my parameter `key`. Residual stacks are matched by
    up-sampling stage and kernel size, not by position in the flat list, so a generator that
    keeps only some of V1's kernels (the lite config) still gets the stacks it kept."""
    if not key.startswith("resblocks."):
        return key
    _, index, rest = key.split(".", 2)
    stage, j = divmod(int(index), len(mine.resblock_kernel_sizes))
    kernel, dilations = mine.resblock_kernel_sizes[j], mine.resblock_dilations[j]
    for k, (their_kernel, their_dilations) in enumerate(
            zip(theirs.resblock_kernel_sizes, theirs.resblock_dilations, strict=True)):
        if (their_kernel, tuple(their_dilations)) == (kernel, tuple(dilations)):
            return f"resblocks.{stage * len(theirs.resblock_kernel_sizes) + k}.{rest}"
    return None


class NSFHiFiGAN(Vocoder):
    """A trained NSF-HiFi-GAN, loaded from a `voiceconv fit` vocoder checkpoint."""

    name = "nsf-hifigan"
    uses_f0 = True
    chunk_frames = NEURAL_CHUNK_FRAMES

    def __init__(self, nsf: NSFConfig, feature_config: FeatureConfig) -> None:
        super().__init__(feature_config)
        hop = math.prod(nsf.upsample_rates)
        if hop != feature_config.hop_length:
            raise VoiceconvError(f"generator up-samples by {hop}, features have hop "
                                 f"{feature_config.hop_length}")
        self.generator = NSFHiFiGANGenerator(nsf, feature_config.sample_rate)
        self.context_frames = receptive_frames(nsf)

    @classmethod
    def from_checkpoint(cls, path: str) -> NSFHiFiGAN:
        vocoder = build_from_checkpoint(cls, path, "vocoder")
        vocoder.generator.remove_weight_norm()
        return vocoder

    def synthesise(self, mel: torch.Tensor, f0: torch.Tensor, start_frame: int = 0,
                   f0_before: torch.Tensor | None = None) -> torch.Tensor:
        phase0 = None
        if f0_before is not None and f0_before.shape[-1]:
            hop, rate = self.feature_config.hop_length, self.feature_config.sample_rate
            phase0 = torch.frac((f0_before.double() * hop / rate).sum(-1))
        with self.autocast(mel.device):
            audio = self.generator(mel, f0, phase0, start_frame * self.feature_config.hop_length)
        return audio.float()

    def synthesise_chunk(self, mel: torch.Tensor, f0: torch.Tensor, left: int,
                         right: int) -> torch.Tensor:
        return self.synthesise(mel[..., left:right], f0[..., left:right], left, f0[..., :left])
