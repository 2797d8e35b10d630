"""The one reader of checkpoint and weight files: `torch.load(weights_only=True)`, so that no
code inside a file can ever run, and a file that is missing, not plain data or not the kind
asked for is one line that says so."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import torch

from voiceconv.core.errors import VoiceconvError

# What a checkpoint of each kind must hold to be one (hyper-parameter keys).
KINDS = {
    "cyclegan": ("a voiceconv CycleGAN checkpoint", ("generator",)),
    "pretrain": ("a `voiceconv pretrain` checkpoint", ("generator",)),
    "vocoder": ("a trained voiceconv vocoder checkpoint", ("nsf", "feature_config")),
}


def load_plain(path: str, map_location: str | torch.device = "cpu") -> Any:
    """The contents of a torch file as tensors and plain data, never Python objects."""
    try:
        with warnings.catch_warnings():  # e.g. "unusual pickle protocol": the error says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise VoiceconvError(f"no such checkpoint: {path}") from None
    except IsADirectoryError:
        raise VoiceconvError(f"{path} is a folder, not a checkpoint") from None
    except pickle.UnpicklingError:
        raise VoiceconvError(f"{path} is not a voiceconv checkpoint: it holds Python objects "
                             "other than tensors and plain data, which could run code when "
                             "loaded; refused") from None
    except Exception as exc:  # noqa: BLE001 - anything else means "not a checkpoint of ours"
        raise VoiceconvError(f"{path} is not a voiceconv checkpoint "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None


def read_checkpoint(path: str, kind: str, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """A Lightning checkpoint of `kind` (see KINDS) as plain data: `hyper_parameters` with the
    keys that kind needs, and a `state_dict`."""
    what, needed = KINDS[kind]
    checkpoint = load_plain(path, map_location)
    hp = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hp or any(hp.get(key) is None for key in needed) or "state_dict" not in checkpoint:
        raise VoiceconvError(f"{path} is not {what}")
    return checkpoint
