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

from voiceconv.core.checkpoint import read_checkpoint
from voiceconv.core.errors import run_as_command
from voiceconv.core.pretrained import export_command, write_entry

PROG = "python -m voiceconv.vocoder.export"


def export_vocoder(checkpoint_path: str, out: str) -> dict[str, int]:
    """Write the generator of `checkpoint_path` to `out`; returns its step and number of
    parameters."""
    checkpoint = read_checkpoint(checkpoint_path, "vocoder")
    state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("generator.")}
    return write_entry(out, dict(checkpoint["hyper_parameters"]), state,
                       int(checkpoint.get("global_step", 0)))


def main(argv: list[str], prog: str = PROG) -> int:
    return export_command(argv, prog, __doc__.split("\n\n")[0], export_vocoder)


if __name__ == "__main__":
    sys.exit(run_as_command(main, sys.argv[1:], PROG))
