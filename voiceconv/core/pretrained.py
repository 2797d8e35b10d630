"""Weights that ship with voiceconv: `pretrained:<name>` names `<name>.pt` in the repository's
`checkpoints/pretrained/` (each with its model card `<name>.md`), wherever a checkpoint path is
taken. `VOICECONV_PRETRAINED` points at another folder of them (an installed copy, a cluster's
shared disk). The files are plain tensors and data, read like every checkpoint (weights_only)."""

from __future__ import annotations

import os
from pathlib import Path

from voiceconv.core.errors import VoiceconvError

PREFIX = "pretrained:"


def pretrained_dir() -> Path:
    override = os.environ.get("VOICECONV_PRETRAINED")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "checkpoints" / "pretrained"


def shipped() -> list[str]:
    """The names of the shipped entries, sorted."""
    folder = pretrained_dir()
    return sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []


def resolve(spec: str | os.PathLike) -> str:
    """The file behind `spec`: `pretrained:<name>` becomes its path (an unknown name is one line
    naming the shipped ones); anything else is a path and comes back as it is."""
    spec = os.fspath(spec)
    if not spec.startswith(PREFIX):
        return spec
    name = spec.removeprefix(PREFIX)
    path = pretrained_dir() / f"{name}.pt"
    if not path.is_file():
        names = ", ".join(shipped()) or "none"
        raise VoiceconvError(f"no pretrained entry {name!r} in {pretrained_dir()} "
                             f"(shipped: {names})")
    return str(path)
