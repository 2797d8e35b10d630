"""A trained vocoder as a file to ship: the generator's weights and the hyper-parameters it is
built from, without the discriminator, the optimizer or the RNG states (a lite `last.ckpt` is
ten times the size).

    python -m voiceconv.vocoder.export checkpoints/singing-vocoder-lite/checkpoints/last.ckpt \
        checkpoints/pretrained/nsf-singing-lite.pt

The file is a vocoder like any checkpoint (`--vocoder pretrained:nsf-singing-lite`, or its
path), and a start for fine-tuning (`init_from`: the discriminator then starts fresh).
"""

from __future__ import annotations

import sys

import torch

from voiceconv.core.checkpoint import read_checkpoint
from voiceconv.core.errors import ArgumentParser, run_as_command
from voiceconv.core.fileio import atomic_path


def export_vocoder(checkpoint_path: str, out: str) -> dict[str, int]:
    """Write the generator of `checkpoint_path` to `out` (atomically); returns its step and
    number of parameters."""
    checkpoint = read_checkpoint(checkpoint_path, "vocoder")
    state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("generator.")}
    shipped = {"hyper_parameters": dict(checkpoint["hyper_parameters"]), "state_dict": state,
               "global_step": int(checkpoint.get("global_step", 0))}
    with atomic_path(out) as tmp:
        torch.save(shipped, tmp)
    return {"step": shipped["global_step"],
            "parameters": sum(v.numel() for v in state.values())}


def main(argv: list[str], prog: str = "python -m voiceconv.vocoder.export") -> int:
    parser = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a vocoder's `voiceconv fit` checkpoint (last.ckpt)")
    parser.add_argument("out", help="the vocoder file to write (.pt)")
    args = parser.parse_args(argv)
    info = export_vocoder(args.checkpoint, args.out)
    print(f"{args.out}: step {info['step']}, {info['parameters']:,} generator parameters")
    return 0


if __name__ == "__main__":
    sys.exit(run_as_command(main, sys.argv[1:], "python -m voiceconv.vocoder.export"))
