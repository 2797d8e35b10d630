"""The `voiceconv` command itself: help that answers at once and says what is there."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
