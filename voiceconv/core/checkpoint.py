"""The one reader of checkpoint and weight files: `torch.load(weights_only=True)`, so that no
code inside a file can ever run, and a file that is missing, not plain data or not the kind
asked for is one line that says so; and the one place that builds a model from a checkpoint."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import types
import typing
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voiceconv.core.errors import VoiceconvError

if TYPE_CHECKING:  # torch loads only when a file is read: the CLIs check paths first
    import torch

# What a checkpoint of each kind must hold to be one (hyper-parameter keys).
KINDS = {
    "cyclegan": ("a voiceconv CycleGAN checkpoint of a fitted pair",
                 ("generator", "feature_config", "singer_stats")),
    "pretrain": ("a `voiceconv pretrain` checkpoint", ("generator",)),
    "vocoder": ("a trained voiceconv vocoder checkpoint", ("nsf", "feature_config")),
}


def require_checkpoint_file(path: str | Path) -> None:
    """One line for a checkpoint path that names no file, without loading torch."""
    if Path(path).is_dir():
        # An experiment folder is the common slip: point at the checkpoint inside it.
        inside = [c for c in (Path(path) / "checkpoints" / "last.ckpt", Path(path) / "last.ckpt")
                  if c.is_file()]
        hint = f" (did you mean {inside[0]}?)" if inside else ""
        raise VoiceconvError(f"{path} is a folder, not a checkpoint{hint}")
    if not Path(path).exists():
        raise VoiceconvError(f"no such checkpoint: {path}")


def load_plain(path: str, map_location: Any = "cpu") -> Any:
    """The contents of a torch file as tensors and plain data, never Python objects."""
    import torch

    require_checkpoint_file(path)
    try:
        with warnings.catch_warnings():  # e.g. "unusual pickle protocol": the error says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
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


def from_plain(hint: Any, value: Any) -> Any:
    """`value` as read from a checkpoint (dicts, lists) made into what the type `hint` says:
    a config dataclass from its dict, tuples from lists; anything else as it is."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = [h for h in typing.get_args(hint) if h is not type(None)]
        return from_plain(kinds[0], value) if len(kinds) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        if hasattr(hint, "from_dict"):  # FeatureConfig: presets and its own checks
            return hint.from_dict(value)
        fields = typing.get_type_hints(hint)
        return hint(**{k: from_plain(fields[k], v) for k, v in value.items()})
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(from_plain(inner, v) for v in value)
    return value


def build_from_checkpoint(cls: type, path: str, kind: str,
                          map_location: str | torch.device = "cpu") -> Any:
    """The one place a model is built from a checkpoint: `cls` constructed from the
    hyper-parameters its constructor takes (configs rebuilt by their type hints), given every
    tensor it has from the checkpoint's state dict (any missing is an error), in eval mode;
    a model with `read_checkpoint_extras` also gets the checkpoint to read what it keeps beside
    the weights.
    Works for a training module and for a lighter inference model of the same checkpoint."""
    checkpoint = read_checkpoint(path, kind, map_location)
    hints = typing.get_type_hints(cls.__init__)
    hp = checkpoint["hyper_parameters"]
    model = cls(**{name: from_plain(hints[name], hp[name])
                   for name in inspect.signature(cls.__init__).parameters
                   if name in hp and name in hints})
    wanted = model.state_dict()
    state = checkpoint["state_dict"]
    missing = [k for k in wanted if k not in state]
    if missing:
        raise VoiceconvError(f"{path} lacks {len(missing)} tensors of {cls.__name__} "
                             f"(e.g. {missing[0]})")
    model.load_state_dict({k: state[k] for k in wanted})
    if hasattr(model, "read_checkpoint_extras"):
        model.read_checkpoint_extras(checkpoint)
    return model.eval()
