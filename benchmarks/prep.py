"""Data-prep throughput: x real time per stage for --jobs 1 and 2, harvest and dio.

    python benchmarks/prep.py [--corpus ../shared/data/singing/pjs] [--repeats 3]

Each repeat prepares the corpus from scratch into a fresh folder (no cached work). Prints a
table of medians over the repeats, the machine, and the targets beside the measurements.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine  # noqa: E402
from data_prep import STAGES  # noqa: E402
from data_prep.config import PrepConfig  # noqa: E402
from data_prep.pipeline import run_prep  # noqa: E402
from voiceconv.core.feature_config import FeatureConfig  # noqa: E402

TARGETS = {("harvest", 2): 8.0, ("dio", 2): 40.0}  # x real time, from issue 2


def as_corpus(folder: Path, workdir: Path) -> Path:
    """A flat folder of one singer's files becomes <corpus>/<singer>/ via a symlink."""
    if any(p.is_dir() for p in folder.iterdir()):
        return folder
    corpus = workdir / "corpus"
    corpus.mkdir()
    (corpus / folder.name).symlink_to(folder.resolve())
    return corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(__file__).resolve().parents[1] / "../shared/data/singing/pjs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--methods", nargs="+", default=["harvest", "dio"])
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = as_corpus(args.corpus.resolve(), Path(tmp))
        for method in args.methods:
            config = PrepConfig(features=FeatureConfig(f0_method=method))
            for jobs in args.jobs:
                runs = []
                for repeat in range(args.repeats):
                    out = Path(tmp) / f"{method}-{jobs}-{repeat}"
                    report = run_prep(corpus, out, config, jobs=jobs, progress=False)
                    per_stage = {s.name: s.seconds for s in report.stages}
                    runs.append((report.input_seconds, report.seconds, per_stage))
                    print(f"  {method} jobs={jobs} repeat {repeat + 1}: "
                          f"{report.input_seconds / report.seconds:.1f}x real time", flush=True)
                audio = runs[0][0]
                rows.append((method, jobs, audio, statistics.median(r[1] for r in runs),
                             {s: statistics.median(r[2][s] for r in runs) for s in STAGES}))

    print(f"\nmachine: {machine()}")
    print(f"corpus: {args.corpus} ({rows[0][2] / 60:.1f} min); median of {args.repeats} "
          "cold runs; stage columns are seconds, total is x real time\n")
    header = "| f0 | jobs | " + " | ".join(STAGES) + " | total s | x real time | target |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for method, jobs, audio, total, stages in rows:
        target = TARGETS.get((method, jobs))
        print(f"| {method} | {jobs} | " + " | ".join(f"{stages[s]:.1f}" for s in STAGES)
              + f" | {total:.1f} | {audio / total:.1f}x | "
              + (f">= {target:.0f}x" if target else "-") + " |")


if __name__ == "__main__":
    main()
