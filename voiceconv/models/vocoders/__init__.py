"""Vocoders: (mel, f0) -> waveform at the feature sample rate, chosen by name."""

from __future__ import annotations

from pathlib import Path

from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.models.vocoders.base import Vocoder
from voiceconv.models.vocoders.griffin_lim import GriffinLim

NAMES = ("griffin-lim", "world", "hifigan-universal")


def load_vocoder(name: str, feature_config: FeatureConfig) -> Vocoder:
    """A vocoder by name or trained checkpoint path, checked against the features it will
    be given."""
    if name.endswith(".ckpt") or Path(name).is_file():
        from voiceconv.models.vocoders.nsf import NSFHiFiGAN

        vocoder: Vocoder = NSFHiFiGAN.from_checkpoint(name)
    elif name == "griffin-lim":
        vocoder = GriffinLim(feature_config)
    elif name == "world":
        from voiceconv.models.vocoders.world import World

        vocoder = World(feature_config)
    elif name == "hifigan-universal":
        from voiceconv.models.vocoders.hifigan import HiFiGANUniversal

        vocoder = HiFiGANUniversal()
    else:
        raise VoiceconvError(f"unknown vocoder {name!r} (choose from {', '.join(NAMES)}, or "
                             "give the path of a vocoder checkpoint)")
    vocoder.require_features(feature_config)
    return vocoder.eval()


__all__ = ["GriffinLim", "NAMES", "Vocoder", "load_vocoder"]
