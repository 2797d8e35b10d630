"""Quality across training seeds: a recipe run once per seed (`--seed S`, each in its own
experiment), and its stage-6 figures per direction side by side, with their median and range.

One run of the demo is one draw: the seed decides the generators' first weights, the masks and
the crops, and with them the figures by more than many a change moves them. A change is worth
keeping when it moves the median of several seeds by more than the seeds spread it. With
--baseline-prefix, the same seeds of the recipe without --recipe-args are run (or found, from an
earlier run) under that prefix and printed beside the change, with each seed's difference: a
training change moves a GAN's whole trajectory, so only differences between runs of one seed
pair up.

Usage: python benchmarks/seed_spread.py [--recipe recipes/demo/run.sh] [--seeds 0 1 2 3 4]
       [--exp-prefix seeds] [--recipe-args "..."]   (more recipe options, e.g. "--fit-args
       '--model.init_args.loss.cycle 5'" or "--key 0") [--baseline-prefix PREFIX]
Runs that finished are not run again (the recipe skips what it did); an interrupted one resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.common import machine  # noqa: E402

# (metrics.json key, column title, format)
COLUMNS = [("f0_key_semitones", "key", "{:+g}"),
           ("f0_median_cents", "F0 median dev. (c)", "{:.1f}"),
           ("gross_pitch_error", "gross pitch error", "{:.1%}"),
           ("gross_pitch_error_stable", "gross, stable F0", "{:.1%}"),
           ("speaker_sim_target", "similarity to target", "{:.3f}"),
           ("speaker_sim_source", "to source", "{:.3f}"),
           ("speaker_sim_margin", "target - source", "{:.3f}"),  # issue 26 asks >= 0.05
           ("dnsmos_ovrl", "DNSMOS OVRL", "{:.2f}")]
DIRECTIONS = {"a2b": "A -> B", "b2a": "B -> A"}


def run_recipe(recipe: Path, exp: str, seed: int, extra: list[str]) -> float:
    """One seed's recipe run; its wall time in seconds (about 0 when it had finished)."""
    log = REPO / "benchmarks" / "out" / "seed_spread" / f"{exp}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = ["bash", str(recipe), "--exp", exp, "--seed", str(seed), *extra]
    print(f"seed {seed}: {shlex.join(command)} (log: {log.relative_to(REPO)})", flush=True)
    start = time.perf_counter()
    # The recipe calls `voiceconv`: this Python's, as from an activated environment.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with open(log, "a") as fh:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"seed {seed}: the recipe failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - start


def scores(exp: str, direction: str) -> dict[str, float]:
    path = REPO / "checkpoints" / exp / "eval" / direction / "metrics.json"
    if not path.is_file():
        sys.exit(f"{exp}: no {path.relative_to(REPO)}; the recipe must run through stage 6")
    metrics = json.loads(path.read_text())
    target, source = metrics.get("speaker_sim_target"), metrics.get("speaker_sim_source")
    if target is not None and source is not None:
        metrics["speaker_sim_margin"] = target - source
    return metrics


def table(rows: dict[int, dict[str, float]], signed: bool = False) -> list[str]:
    """Per seed, then the median, minimum and maximum; `signed` for differences."""
    columns = [(key, title, fmt.replace("{:", "{:+") if signed and "+" not in fmt else fmt)
               for key, title, fmt in COLUMNS]
    lines = ["| seed | " + " | ".join(title for _, title, _ in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for seed, m in rows.items():
        lines.append(f"| {seed} | " + " | ".join(
            fmt.format(m[key]) if m.get(key) is not None else "-" for key, _, fmt in columns)
            + " |")
    summary = {"median": statistics.median, "min": min, "max": max}
    for name, how in summary.items():
        cells = []
        for key, _, fmt in columns:
            values = [m[key] for m in rows.values() if m.get(key) is not None]
            cells.append(fmt.format(how(values)) if values else "-")
        lines.append(f"| **{name}** | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "demo" / "run.sh")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--exp-prefix", default="seeds")
    parser.add_argument("--recipe-args", default="", help="more options for every run")
    parser.add_argument("--baseline-prefix", default=None,
                        help="also run the same seeds without --recipe-args under this prefix "
                             "(runs that finished are reused) and print the differences")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    variants = {args.exp_prefix: shlex.split(args.recipe_args)}
    if args.baseline_prefix:
        variants[args.baseline_prefix] = []
    for prefix, extra in variants.items():
        seconds = [run_recipe(args.recipe.resolve(), f"{prefix}{seed}", seed, extra)
                   for seed in args.seeds]
        print(f"{shlex.join(['bash', str(args.recipe), *extra])}: wall time per run "
              + ", ".join(f"{s / 60:.1f} min" for s in seconds))
    for direction, title in DIRECTIONS.items():
        rows = {prefix: {seed: scores(f"{prefix}{seed}", direction) for seed in args.seeds}
                for prefix in variants}
        for prefix, extra in variants.items():
            print(f"\n{title} ({direction}), the held-out songs: {prefix}, "
                  f"{shlex.join(extra) or 'the recipe as it is'}")
            print("\n".join(table(rows[prefix])))
        if args.baseline_prefix:
            change, base = rows[args.exp_prefix], rows[args.baseline_prefix]
            differences = {seed: {key: change[seed][key] - base[seed][key] for key, _, _ in COLUMNS
                                  if change[seed].get(key) is not None
                                  and base[seed].get(key) is not None}
                           for seed in args.seeds}
            print(f"\n{title} ({direction}): {args.exp_prefix} minus {args.baseline_prefix}, "
                  "seed by seed")
            print("\n".join(table(differences, signed=True)))


if __name__ == "__main__":
    main()
