"""The `voiceconv` command itself: help that answers at once and says what is there."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO
from voiceconv.models.vocoders import NAMES


@pytest.mark.parametrize("command", ["prep", "convert"])
def test_help_imports_neither_torch_nor_scipy(command):
    """The help of the commands people type most answers without loading torch or scipy
    (seconds on a small CPU)."""
    script = f"""
import contextlib, io, json, sys
from voiceconv.cli import main
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        code = main([{command!r}, "--help"])
except SystemExit as stop:  # argparse's way out of --help
    code = stop.code
print(json.dumps({{"code": code, "help": out.getvalue(),
                  "loaded": sorted(m for m in ("torch", "scipy") if m in sys.modules)}}))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["code"] == 0 and f"voiceconv {command}" in answer["help"]
    assert answer["loaded"] == [], answer["loaded"]
    if command == "convert":  # the vocoder names are in its help
        assert all(name in answer["help"] for name in NAMES), answer["help"]


def test_the_command_itself_answers_help_version_and_a_typo_in_one_line(capsys):
    from voiceconv import __version__
    from voiceconv.cli import COMMANDS, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out  # help is asked for: stdout, exit 0
    assert all(name in out for name in COMMANDS)
    assert main(["--version"]) == 0 and capsys.readouterr().out == f"voiceconv {__version__}\n"
    assert main(["covert", "song.wav"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["voiceconv: error: unknown command 'covert' (did you mean convert? commands: "
                   "prep, pretrain, fit, convert, eval)"]
    assert main([]) == 2 and "usage: voiceconv COMMAND" in capsys.readouterr().err


def test_a_full_disk_is_one_line_that_says_so_and_other_failures_stay_unexpected(capsys):
    from voiceconv.core.errors import run_as_command

    def full(argv, prog):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/dump/feats/x.npy")

    assert run_as_command(full, [], "voiceconv prep") == 2
    said = capsys.readouterr().err.strip()
    assert said.count("\n") == 0 and "the disk is full (writing /data/dump/feats/x.npy)" in said

    def denied(argv, prog):
        raise PermissionError(errno.EACCES, "Permission denied", "/x")

    assert run_as_command(denied, [], "voiceconv prep") == 1
    assert "unexpected error: PermissionError" in capsys.readouterr().err


def test_a_checkpoint_that_does_not_fit_on_the_disk_says_so_and_keeps_the_last_one(
        tmp_path, monkeypatch):
    """torch reports a full disk as "unexpected pos ..."; the checkpoint before stays whole."""
    from voiceconv.core import fileio
    from voiceconv.core.errors import VoiceconvError
    from voiceconv.training import callbacks

    io = callbacks.AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 100, "w": torch.ones(3)}, path)
    before = path.read_bytes()

    def save_half(obj, f):
        Path(f).write_bytes(b"PK half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(callbacks.torch, "save", save_half)
    usage = shutil.disk_usage(tmp_path)
    # With room on the disk the failure is something else, and stays torch's own error.
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: usage._replace(free=10**12))
    with pytest.raises(RuntimeError, match="unexpected pos"):
        io.save_checkpoint({"global_step": 200, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: usage._replace(free=3_000_000))
    with pytest.raises(VoiceconvError, match=r"last\.ckpt: the disk is full \(3 MB free\).*resume"):
        io.save_checkpoint({"global_step": 200, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]
    assert io.load_checkpoint(path)["global_step"] == 100
