"""The demo recipe's stage machinery (the prep stage itself is tested in test_prep.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

DEMO = REPO / "recipes" / "demo"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "run.sh", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def _recipe_copy(tmp_path: Path) -> Path:
    """A copy of the demo recipe (audio linked), so tests never write into the repository."""
    root = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes" / "common", root / "common")
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns("audio", "data", "dump"))
    (root / "demo" / "audio").symlink_to(DEMO / "audio")
    return root / "demo"


def test_stage_0_lists_training_and_held_out_songs(tmp_path):
    demo = _recipe_copy(tmp_path)
    done = _run("--stage", "0", "--stop-stage", "0", cwd=demo)
    assert done.returncode == 0, done.stderr
    assert "run: local/data.sh audio data" in done.stderr  # every stage logs its command
    train = (demo / "data/train/wav.scp").read_text().splitlines()
    test = (demo / "data/test/wav.scp").read_text().splitlines()
    assert len(train) == 21 and len(test) == 2
    assert {line.split()[0] for line in test} == {
        "nit_f001-nitech_jp_song070_f001_029", "pjs-pjs020_song"}
    for line in train + test:
        utt, path = line.split(" ", 1)
        assert Path(path).is_file()
    utt2spk = dict(line.split() for line in (demo / "data/train/utt2spk").read_text().splitlines())
    assert set(utt2spk.values()) == {"nit_f001", "pjs"}
    assert not (demo / "dump").exists()  # stage 1 was outside the range


def test_unknown_option_is_refused(tmp_path):
    done = _run("--stgae", "1", cwd=_recipe_copy(tmp_path))
    assert done.returncode == 2 and "unknown option --stgae" in done.stderr
