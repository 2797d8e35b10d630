"""Weights that ship with voiceconv: `pretrained:<name>` names `<name>.pt` in the repository's
`checkpoints/pretrained/` (each with its model card `<name>.md`), wherever a checkpoint path is
taken. `VOICECONV_PRETRAINED` points at another folder of them (an installed copy, a cluster's
shared disk). The files are plain tensors and data, read like every checkpoint (weights_only)."""

from __future__ import annotations

import os
from collections.abc import Callable
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


def write_entry(out: str, hyper_parameters: dict, state_dict: dict, step: int) -> dict[str, int]:
    """Write a file to ship (atomically): the weights a model is built from, its
    hyper-parameters and its step, nothing else; returns its step and number of parameters."""
    import torch

    from voiceconv.core.fileio import atomic_path

    with atomic_path(out) as tmp:
        torch.save({"hyper_parameters": hyper_parameters, "state_dict": state_dict,
                    "global_step": step}, tmp)
    return {"step": step, "parameters": sum(v.numel() for v in state_dict.values())}


def export_command(argv: list[str], prog: str, description: str,
                   export: Callable[[str, str], dict[str, int]]) -> int:
    """`python -m <module> CHECKPOINT OUT`: `export` a training run's generator to a file to
    ship."""
    from voiceconv.core.errors import ArgumentParser

    parser = ArgumentParser(prog=prog, description=description)
    parser.add_argument("checkpoint", help="the training run's checkpoint (last.ckpt)")
    parser.add_argument("out", help="the file to write (.pt)")
    args = parser.parse_args(argv)
    info = export(args.checkpoint, args.out)
    print(f"{args.out}: step {info['step']}, {info['parameters']:,} generator parameters")
    return 0
