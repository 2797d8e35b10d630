"""What every voiceconv LightningModule adds to its checkpoints so that a resumed run continues
exactly: its own random generators and torch's, and checks that the data it resumes on was
made with the feature config the checkpoint was trained on and that the model is the one the
checkpoint holds."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig


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
        if "state_dict" in checkpoint:
            require_same_model(self.state_dict(), checkpoint["state_dict"],
                               getattr(self, "hparams", {}),
                               checkpoint.get("hyper_parameters", {}))
        saved = checkpoint.get("hyper_parameters", {}).get("feature_config")
        if saved is not None and self.feature_config is not None:
            FeatureConfig.from_dict(saved).require_same(self.feature_config, "checkpoint", "data")
        if "rng" in checkpoint:
            for name, rng in self.own_rngs().items():
                rng.set_state(checkpoint["rng"][name])
            torch.set_rng_state(checkpoint["rng"]["torch"])


# Set from the data, not by the user: a difference there is the data's to explain.
DATA_HPARAMS = ("feature_config", "singer_stats", "n_singers", "_instantiator")


def require_same_model(model: dict[str, torch.Tensor], saved: dict[str, torch.Tensor],
                       hparams: dict[str, Any], saved_hparams: dict[str, Any]) -> None:
    """A checkpoint whose tensors do not fit the model (another size, more blocks) is refused
    in one line naming the settings that differ, instead of a page of state-dict errors."""
    misfits = sorted(set(model) ^ set(saved)) + sorted(
        name for name in set(model) & set(saved) if model[name].shape != saved[name].shape)
    if not misfits:
        return
    now, then = _flat(hparams), _flat(saved_hparams)
    settings = [f"{name}: checkpoint {then.get(name)} vs model {now.get(name)}"
                for name in sorted(set(now) | set(then))
                if now.get(name) != then.get(name) and not name.startswith(DATA_HPARAMS)]
    what = "; ".join(settings) if settings else f"{len(misfits)} tensors differ, e.g. {misfits[0]}"
    raise VoiceconvError(f"the checkpoint to resume was trained with another model ({what}): "
                         "resume with the settings it was trained with (config.yaml in its "
                         "experiment folder), or start a new --experiment")


def _flat(hparams: Any, prefix: str = "") -> dict[str, Any]:
    """Nested settings as {"generator.channels": 16, ...}."""
    if dataclasses.is_dataclass(hparams):
        hparams = dataclasses.asdict(hparams)
    if not isinstance(hparams, dict):
        return {prefix.rstrip("."): hparams}
    flat: dict[str, Any] = {}
    for key, value in hparams.items():
        flat.update(_flat(value, f"{prefix}{key}."))
    return flat
