"""The inference half of a fitted CycleGAN: both generators, the feature config and the
per-singer statistics, loaded from a training checkpoint without Lightning or discriminators.

`PairConversion` holds the conversion arithmetic once, for both this light `SingerPair` and the
training module `CycleGANVC`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from voiceconv.core.checkpoint import build_from_checkpoint
from voiceconv.core.envelope import SpectralEnvelope, shift_harmonics
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.neighbours import neighbour_means
from voiceconv.models import Generator, GeneratorConfig


class PairConversion:
    """Mixin for a module with generators `g_ab`, `g_ba` and `feature_config`/`singer_stats`.

    Singer "a" and "b" mels are normalised with their own statistics before the generator and
    denormalised with the target's after it. A model with `spectral_envelope` converts the
    envelopes of the mels (the timbre) and puts the source's harmonics (the melody, moved to
    the key asked for) back on the converted envelope. A model fitted since 2026-12-05 also
    keeps each singer's normalised training frames (`frame_banks`), so that its conversions
    can be matched to the target singer's own frames (`match_k`).
    """

    # Normalised levels above this are clipped at conversion, before and after the generator.
    # A bin the source singer rarely fills (A singing lower than anywhere in her training
    # songs: z = 5 in the mel bins of her fundamental) would otherwise be scaled by the target's
    # larger spread into a burst ~40 dB above the rest of the song (seen in the demo).
    # Quieter-than-usual bins are harmless and left alone.
    MAX_Z = 3.0

    g_ab: nn.Module
    g_ba: nn.Module
    singer_stats: dict[str, Any] | None
    frame_banks: dict[str, torch.Tensor] | None = None  # "a", "b": (n_mels, frames)
    _envelope: SpectralEnvelope | None = None
    feature_config: FeatureConfig | None
    spectral_envelope: bool = False

    def stats_tensor(self, singer: str, key: str) -> torch.Tensor:
        if self.singer_stats is None:
            raise VoiceconvError("this model has no singer statistics (it was never fitted)")
        device = next(self.g_ab.parameters()).device
        return torch.tensor(self.singer_stats[singer][key], dtype=torch.float32,
                            device=device)[:, None]

    def normalise(self, log_mel: torch.Tensor, singer: str) -> torch.Tensor:
        return (log_mel - self.stats_tensor(singer, "mel_mean")) / self.stats_tensor(
            singer, "mel_std")

    def denormalise(self, mel: torch.Tensor, singer: str) -> torch.Tensor:
        return mel * self.stats_tensor(singer, "mel_std") + self.stats_tensor(singer, "mel_mean")

    def read_checkpoint_extras(self, checkpoint: dict[str, Any]) -> None:
        """What a checkpoint keeps beside the weights (`build_from_checkpoint` calls this)."""
        self.frame_banks = checkpoint.get("frame_banks")

    @torch.no_grad()
    def convert(self, log_mel: torch.Tensor, direction: str = "a2b",
                f0: torch.Tensor | None = None, key: float = 0.0,
                match_k: int = 0) -> torch.Tensor:
        """log_mel: (B, n_mels, T) of the source singer -> (B, n_mels, T) as the target singer.

        f0: (B, T) Hz of the source, needed by a model that converts spectral envelopes; key:
        semitones the output's harmonics move by (such a model's mel follows the key; any other
        model's mel keeps its pitch and leaves the key to an F0-driven vocoder). match_k: if
        > 0, each converted frame is replaced by the mean of its `match_k` nearest frames of
        the target singer's training songs (kNN-VC's matching, on the generator's output).
        Any T: the input is padded by reflection to a multiple of 4 frames and trimmed back.
        """
        source, target, generator = {"a2b": ("a", "b", self.g_ab),
                                     "b2a": ("b", "a", self.g_ba)}[direction]
        device = next(generator.parameters()).device
        log_mel = log_mel.to(device)
        # Each frame keeps the source frame's energy (log-sum over the mel bins): the singer's
        # dynamics stay the source's, and the conversion changes the spectral shape only.
        energy = torch.logsumexp(log_mel, dim=1, keepdim=True)
        harmonics = 0.0
        if self.spectral_envelope:
            envelope = self.envelopes_of(log_mel, f0)
            harmonics = shift_harmonics(log_mel - envelope, key, self.feature_config)
            log_mel = envelope
        frames = log_mel.shape[-1]
        pad = -frames % 4
        x = self.normalise(log_mel, source).clamp(max=self.MAX_Z)
        if pad:
            x = nn.functional.pad(x, (0, pad), mode="reflect" if frames > pad else "replicate")
        converted = generator(x)
        if match_k:
            bank = self.frame_bank(target, match_k).to(device)
            converted = torch.stack([neighbour_means(c, bank, match_k) for c in converted])
        converted = self.denormalise(converted.clamp(max=self.MAX_Z), target)[..., :frames]
        converted = converted + harmonics
        return converted + energy - torch.logsumexp(converted, dim=1, keepdim=True)

    def frame_bank(self, singer: str, k: int) -> torch.Tensor:
        banks = self.frame_banks
        if banks is None:
            raise VoiceconvError("this model keeps no training frames to match (it was fitted "
                                 "before 2026-12-05): fit it again, or convert without "
                                 "--match-k")
        if not 0 < k <= banks[singer].shape[1]:
            raise VoiceconvError(f"--match-k must be in 1..{banks[singer].shape[1]} (the "
                                 f"target singer's training frames), got {k}")
        return banks[singer]

    def envelopes_of(self, log_mel: torch.Tensor, f0: torch.Tensor | None) -> torch.Tensor:
        if f0 is None:
            raise VoiceconvError("this model converts spectral envelopes: it needs the "
                                 "source F0 with the mel")
        if self._envelope is None:
            self._envelope = SpectralEnvelope(self.feature_config)
        return torch.stack([torch.from_numpy(self._envelope.log_mel(m, f.cpu().numpy()))
                            for m, f in zip(log_mel, f0, strict=True)]).to(log_mel.device)


class SingerPair(PairConversion, nn.Module):
    def __init__(self, generator: GeneratorConfig, feature_config: FeatureConfig,
                 singer_stats: dict[str, Any], spectral_envelope: bool = False) -> None:
        super().__init__()
        self.g_ab, self.g_ba = Generator(generator), Generator(generator)
        self.feature_config = feature_config
        self.singer_stats = singer_stats
        self.spectral_envelope = spectral_envelope

    @classmethod
    def from_checkpoint(cls, path: str, map_location: str | torch.device = "cpu") -> SingerPair:
        """Both generators of a fitted CycleGAN checkpoint, without Lightning or the
        discriminators."""
        return build_from_checkpoint(cls, path, "cyclegan", map_location)
