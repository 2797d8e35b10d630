"""What every voiceconv LightningModule adds to its checkpoints so that a resumed run continues
exactly: its own random generators and torch's, and a check that the data it resumes on was
made with the feature config the checkpoint was trained on."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from voiceconv.core.features import FeatureConfig


def plain_hparams(hparams: dict[str, Any]) -> None:
    """Turn every config dataclass in `hparams` into a dict, in place: a checkpoint must hold
    plain data only, to load with `torch.load(weights_only=True)`."""
    for key, value in hparams.items():
        if dataclasses.is_dataclass(value):
            hparams[key] = dataclasses.asdict(value)


class ExactResume:
    """LightningModule mixin; the module provides `own_rngs()` and sets `feature_config` (the
    FeatureConfig of its data, linked from the data module by `voiceconv fit`; None when the
    module was built without data)."""

    feature_config: FeatureConfig | None

    def own_rngs(self) -> dict[str, torch.Generator]:
        raise NotImplementedError

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng"] = {**{name: rng.get_state() for name, rng in self.own_rngs().items()},
                             "torch": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("hyper_parameters", {}).get("feature_config")
        if saved is not None and self.feature_config is not None:
            FeatureConfig.from_dict(saved).require_same(self.feature_config, "checkpoint", "data")
        if "rng" in checkpoint:
            for name, rng in self.own_rngs().items():
                rng.set_state(checkpoint["rng"][name])
            torch.set_rng_state(checkpoint["rng"]["torch"])
