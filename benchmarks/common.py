"""What every benchmark prints first: the machine it ran on."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from voiceconv.core.cpu import runs_bf16_fast

# The instruction sets that decide how fast oneDNN's convolutions run: CPUs of one name
# differ in them (a 2-core EPYC without AVX-512 ran the demo's fit 5x slower than one with).
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
REPO = Path(__file__).resolve().parents[1]


def bf16_hardware() -> bool:
    """Whether bf16 autocast can be faster than fp32 here: on a GPU, or on a CPU with bf16
    units."""
    return torch.cuda.is_available() or runs_bf16_fast()


def precision_row(vocoder, name: str, precision: str, precisions: list[str]) -> str | None:
    """Set `vocoder` to `precision` and name its row; None where the row would repeat one
    already measured: a vocoder without a network (WORLD, Griffin-Lim) ignores precision
    and gets one row."""
    if next(vocoder.parameters(), None) is None:
        return name if precision == precisions[0] else None
    vocoder.with_precision(precision)
    return f"{name} ({precision})" if len(precisions) > 1 else name


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    if Path("/proc/cpuinfo").is_file():
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break  # the first processor is enough
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        flags = set(fields.get("flags", "").split())
        has = [f for f in CPU_FLAGS if f in flags] + ([] if "avx512f" in flags else ["no AVX-512"])
        cpu = (f"{fields.get('model name', cpu)} (family {fields.get('cpu family', '?')} model "
               f"{fields.get('model', '?')}: {', '.join(has)})")
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cpu}, {os.cpu_count()} cores{gpu}, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads{_load()}")


def _load() -> str:
    """How busy the CPU was during the second before the benchmark: timings taken while
    other work shares the CPU are not comparable (a vocoder once measured at half its idle
    speed). Linux only (/proc/stat)."""
    stat = Path("/proc/stat")
    if not stat.is_file():
        return ""

    def idle_and_total() -> tuple[int, int]:
        ticks = [int(t) for t in stat.read_text().split("\n", 1)[0].split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle + iowait

    idle0, total0 = idle_and_total()
    time.sleep(1.0)
    idle1, total1 = idle_and_total()
    busy = 1 - (idle1 - idle0) / max(1, total1 - total0)
    warning = " (other work is running: timings are not comparable)" if busy > 0.2 else ""
    return f", CPU {busy:.0%} busy before the run{warning}"


@contextlib.contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """`commit` checked out in a temporary git worktree (for timing earlier code beside this
    checkout's in one run)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet",
                        str(tree), commit], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           check=False)
