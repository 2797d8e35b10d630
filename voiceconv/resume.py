"""What every voiceconv LightningModule adds to its checkpoints so that a resumed run continues
exactly: its own random generators and torch's, and a check that the data it resumes on was
made with the feature config the checkpoint was trained on."""

from __future__ import annotations

from typing import Any

import torch

from voiceconv.features import FeatureConfig


class ExactResume:
    """LightningModule mixin; the module provides `own_rngs()` and `feature_config`."""

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
