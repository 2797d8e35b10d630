"""Vocoders: (mel, f0) -> waveform at the feature sample rate."""

from voiceconv.vocoder.griffin_lim import GriffinLim

__all__ = ["GriffinLim"]
