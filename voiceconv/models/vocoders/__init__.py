"""Vocoders: (mel, f0) -> waveform at the feature sample rate, chosen by name."""

from __future__ import annotations

from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.pretrained import resolve
from voiceconv.core.vocoder_names import NAMES, is_checkpoint, require_vocoder
from voiceconv.models.vocoders.base import Vocoder
from voiceconv.models.vocoders.griffin_lim import GriffinLim


def load_vocoder(name: str, feature_config: FeatureConfig) -> Vocoder:
    """A vocoder by name or trained checkpoint path, checked against the features it will
    be given."""
    require_vocoder(name)
    if is_checkpoint(name):
        from voiceconv.models.vocoders.nsf import NSFHiFiGAN

        vocoder: Vocoder = NSFHiFiGAN.from_checkpoint(resolve(name))
    elif name == "griffin-lim":
        vocoder = GriffinLim(feature_config)
    elif name == "world":
        from voiceconv.models.vocoders.world import World

        vocoder = World(feature_config)
    else:  # hifigan-universal, the last name require_vocoder lets through
        from voiceconv.models.vocoders.hifigan import HiFiGANUniversal

        vocoder = HiFiGANUniversal()
    vocoder.require_features(feature_config)
    return vocoder.eval()


__all__ = ["GriffinLim", "NAMES", "Vocoder", "load_vocoder"]
