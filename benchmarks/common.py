"""What every benchmark prints first: the machine it ran on."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
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
