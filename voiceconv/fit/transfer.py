"""Fine-tuning a pair from a pretrained base (`voiceconv pretrain`): which weights load, and
the schedule that protects them early on.

As in fastai-style transfer learning, the pretrained encoders are frozen for the first
`freeze_encoder_steps` steps while the parts that start cold (the discriminators, and the
decoders where the base could not supply them) warm up; then they train too, at
`encoder_lr_scale` times the generators' learning rate (discriminative learning rates).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from voiceconv.core.checkpoint import read_checkpoint
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import F0_FIELDS, FeatureConfig
from voiceconv.core.pretrained import resolve
from voiceconv.models import GeneratorConfig

# The generator fields that decide the encoder's tensor shapes; the decoder's also depend on
# the rest (residual_blocks), and global_residual decides what its output means.
ENCODER_FIELDS = ("n_mels", "channels", "residual_channels", "encoder_blocks")


@dataclass(frozen=True)
class TransferConfig:
    freeze_encoder_steps: int = 0  # encoders frozen (no updates, no optimizer state) until here
    encoder_lr_scale: float = 1.0  # encoders' learning rate / the generators' after that


@dataclass
class BaseWeights:
    """The generator weights of a base checkpoint that fit a model: `encoder` always,
    `decoder` only where the whole generator config matches (else None, and `note` says why)."""

    encoder: dict[str, torch.Tensor]
    decoder: dict[str, torch.Tensor] | None
    note: str


def load_base(path: str, model: GeneratorConfig, features: FeatureConfig | None,
              spectral_envelope: bool = False) -> BaseWeights:
    """Read a `voiceconv pretrain` checkpoint or shipped base (`pretrained:<name>`; either
    weights_only) and check it fits a pair model with generator config `model` trained on
    `features` (or on their spectral envelopes); a misfit is one error naming the differing
    fields."""
    path = resolve(path)
    checkpoint = read_checkpoint(path, "pretrain")
    hp: dict[str, Any] = checkpoint.get("hyper_parameters", {})
    state = checkpoint.get("state_dict", {})
    if "generator" not in hp or not any(k.startswith("generator.encoder.") for k in state):
        raise VoiceconvError(f"{path} is not a `voiceconv pretrain` checkpoint "
                             "(no generator encoder weights in it)")
    base = hp["generator"]
    wanted = dataclasses.asdict(model)
    differ = [f"{k}: base {base.get(k)} vs model {wanted[k]}" for k in ENCODER_FIELDS
              if base.get(k) != wanted[k]]
    if differ:
        raise VoiceconvError(f"base checkpoint {path} does not fit this model's encoder ("
                             + "; ".join(differ) + ")")
    if bool(hp.get("spectral_envelope")) != spectral_envelope:
        seen = {True: "spectral envelopes", False: "mels"}
        raise VoiceconvError(f"base checkpoint {path} was pretrained on "
                             f"{seen[bool(hp.get('spectral_envelope'))]}, this model converts "
                             f"{seen[spectral_envelope]} (data.spectral_envelope)")
    if features is not None and hp.get("feature_config") is not None:
        # The encoder sees mels only: a base made with another F0 tracker fits.
        FeatureConfig.from_dict(hp["feature_config"]).require_same(features, "base", "data",
                                                                   ignore=F0_FIELDS)

    def part(name: str) -> dict[str, torch.Tensor]:
        prefix = f"generator.{name}."
        return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}

    other = [f"{k}: base {base.get(k)} vs model {v}" for k, v in wanted.items()
             if k not in ENCODER_FIELDS and base.get(k) != v]
    if other:
        return BaseWeights(part("encoder"), None,
                           "encoders loaded; the decoders start fresh, as the base's were "
                           "made for another generator (" + "; ".join(other) + ")")
    return BaseWeights(part("encoder"), part("decoder"), "encoders and decoders loaded")
