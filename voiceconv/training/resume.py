"""What every voiceconv LightningModule adds to its checkpoints so that a resumed run continues
exactly: its own random generators and torch's, and a check that the data it resumes on was
made with the feature config the checkpoint was trained on."""

from __future__ import annotations

from typing import Any

import torch

from voiceconv.core.features import FeatureConfig


class ExactResume:
    """LightningModule mixin; the module provides `own_rngs()` and keeps its feature config
    as a plain dict in `hparams.feature_config` (None until fitted)."""

    @property
    def feature_config(self) -> FeatureConfig | None:
        fc = self.hparams.feature_config
        return FeatureConfig.from_dict(fc) if fc is not None else None

    def data_feature_config(self) -> FeatureConfig | None:
        """The trainer's datamodule's feature config (None without one), refused if the model
        already holds another; call from `setup`, then store it in `hparams.feature_config`."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is None:
            return None
        data_config = datamodule.feature_config
        if self.feature_config is not None:
            self.feature_config.require_same(data_config, "model", "data")
        return data_config

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
