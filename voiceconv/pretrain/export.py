"""A pretraining run's base as a file to ship: the generator's weights and the hyper-parameters
a pair checks them against, without the optimizer, the RNG states or the pretraining-only
singer parts (a 5000-step `last.ckpt` of the small model is 3x the size).

    python -m voiceconv.pretrain.export checkpoints/pretrain_pool_small/checkpoints/last.ckpt \
        checkpoints/pretrained/singing-base-small.pt

The file is read like any base (`init_from: pretrained:singing-base-small`, or its path) and
like any pretraining checkpoint (`load_pretraining`).
"""

from __future__ import annotations

import sys

import torch

from voiceconv.core.checkpoint import read_checkpoint
from voiceconv.core.errors import ArgumentParser, VoiceconvError, run_as_command
from voiceconv.core.fileio import atomic_path


def export_base(checkpoint_path: str, out: str) -> dict[str, int]:
    """Write the base of `checkpoint_path` to `out` (atomically); returns its step and
    number of parameters."""
    checkpoint = read_checkpoint(checkpoint_path, "pretrain")
    state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("generator.")}
    if not any(k.startswith("generator.encoder.") for k in state):
        raise VoiceconvError(f"{checkpoint_path} has no generator encoder weights")
    hp = dict(checkpoint["hyper_parameters"])
    hp["singer_adversarial"] = 0.0  # its classifier is not shipped: the file has no use for it
    shipped = {"hyper_parameters": hp, "state_dict": state,
               "global_step": int(checkpoint.get("global_step", 0))}
    with atomic_path(out) as tmp:
        torch.save(shipped, tmp)
    return {"step": shipped["global_step"],
            "parameters": sum(v.numel() for v in state.values())}


def main(argv: list[str], prog: str = "python -m voiceconv.pretrain.export") -> int:
    parser = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a `voiceconv pretrain` checkpoint (last.ckpt)")
    parser.add_argument("out", help="the base file to write (.pt)")
    args = parser.parse_args(argv)
    info = export_base(args.checkpoint, args.out)
    print(f"{args.out}: step {info['step']}, {info['parameters']:,} generator parameters")
    return 0


if __name__ == "__main__":
    sys.exit(run_as_command(main, sys.argv[1:], "python -m voiceconv.pretrain.export"))
