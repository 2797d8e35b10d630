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

from voiceconv.core.checkpoint import read_checkpoint
from voiceconv.core.errors import VoiceconvError, run_as_command
from voiceconv.core.pretrained import export_command, write_entry

PROG = "python -m voiceconv.pretrain.export"


def export_base(checkpoint_path: str, out: str) -> dict[str, int]:
    """Write the base of `checkpoint_path` to `out` (atomically); returns its step and
    number of parameters."""
    checkpoint = read_checkpoint(checkpoint_path, "pretrain")
    state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("generator.")}
    if not any(k.startswith("generator.encoder.") for k in state):
        raise VoiceconvError(f"{checkpoint_path} has no generator encoder weights")
    hp = dict(checkpoint["hyper_parameters"])
    hp["singer_adversarial"] = 0.0  # its classifier is not shipped: the file has no use for it
    return write_entry(out, hp, state, int(checkpoint.get("global_step", 0)))


def main(argv: list[str], prog: str = PROG) -> int:
    return export_command(argv, prog, __doc__.split("\n\n")[0], export_base)


if __name__ == "__main__":
    sys.exit(run_as_command(main, sys.argv[1:], PROG))
