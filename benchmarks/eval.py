"""Wall-clock time of `voiceconv eval` as a recipe's stage 6 runs it, this checkout beside
earlier commits.

Stage 6 measures one held-out song per direction (non-parallel, the key taken out, the
singers' training songs as their voices). This times that command for each direction, start-up
included, as a user waits for it: this checkout and each `--compare-to` commit (checked out in
a git worktree, run from there) once per round, rounds repeated, and prints the median, the
fastest-slowest range and the ratio to the first code. The inputs are those the recipe's stage
6 left in `EXP/eval/<direction>/` and `EXP/converted/<direction>/`, so a recipe must have run
that far: by default the demo's (`bash recipes/demo/run.sh`).

Usage: python benchmarks/eval.py [--exp checkpoints/demo] [--repeats 3] [--compare-to COMMIT ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import REPO, machine, worktree  # noqa: E402

DIRECTIONS = ("a2b", "b2a")


def eval_seconds(code: Path, exp: Path, direction: str, out: Path) -> float:
    """One `voiceconv eval` of `direction` with the code in `code`, as stage 6 runs it."""
    inputs = exp / "eval" / direction
    argv = [sys.executable, "-m", "voiceconv.cli", "eval", "--quiet", "--mode", "nonparallel",
            "--transposed", "--converted", str(exp / "converted" / direction),
            "--source", str(inputs / "source"), "--reference", str(inputs / "reference"),
            "--target-voice", str(inputs / "target_voice"),
            "--source-voice", str(inputs / "source_voice"), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(argv, cwd=code, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(code)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exp", type=Path, default=REPO / "checkpoints" / "demo",
                        help="a recipe experiment that ran stage 6 (default: the demo's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare-to", nargs="*", default=[], metavar="COMMIT")
    args = parser.parse_args()
    exp = args.exp.resolve()
    missing = [d for d in DIRECTIONS if not (exp / "eval" / d / "source").is_dir()]
    if missing:
        sys.exit(f"benchmarks/eval.py: {exp} has no stage-6 inputs for {', '.join(missing)}: "
                 "run the recipe through stage 6 first")

    print(f"machine: {machine()}")
    with contextlib.ExitStack() as stack:
        codes = {"this checkout": REPO}
        codes.update({c: stack.enter_context(worktree(c)) for c in args.compare_to})
        out = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        seconds: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.repeats):
            for name, code in codes.items():
                for direction in DIRECTIONS:
                    s = eval_seconds(code, exp, direction, out / f"{round_}-{direction}")
                    seconds.setdefault((name, direction), []).append(s)
    print(f"`voiceconv eval` of {exp.name}'s held-out songs, median of {args.repeats} rounds")
    print("| code | direction | s | range | speed vs this checkout |")
    print("|---|---|---|---|---|")
    for (name, direction), times in seconds.items():
        base = statistics.median(seconds["this checkout", direction])
        median = statistics.median(times)
        print(f"| {name} | {direction} | {median:.1f} | {min(times):.1f}-{max(times):.1f} | "
              f"{base / median:.2f}x |")


if __name__ == "__main__":
    main()
