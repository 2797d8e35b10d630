"""The vocoders `--vocoder` takes by name, known without loading any of them (torch takes
seconds to import), so that a command can check its choice before it starts."""

from __future__ import annotations

from pathlib import Path

from voiceconv.core.checkpoint import require_checkpoint_file
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.pretrained import PREFIX, resolve

NAMES = ("griffin-lim", "world", "hifigan-universal")
# A neural vocoder's arithmetic (`Vocoder.precision`).
PRECISIONS = ("auto", "fp32", "bf16")


def is_checkpoint(name: str) -> bool:
    """Whether `--vocoder` names a trained vocoder's checkpoint (a path, or a shipped one as
    `pretrained:<name>`) rather than a vocoder."""
    return name.startswith(PREFIX) or name.endswith(".ckpt") or Path(name).is_file()


def require_vocoder(name: str) -> None:
    """One line for a `--vocoder` that is neither a name nor an existing checkpoint."""
    if is_checkpoint(name):
        require_checkpoint_file(resolve(name))
    elif name not in NAMES:
        raise VoiceconvError(f"unknown vocoder {name!r} (choose from {', '.join(NAMES)}, or "
                             "give the path of a vocoder checkpoint, or pretrained:<name>)")
