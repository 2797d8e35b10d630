"""`voiceconv prep CORPUS OUT` (also `python -m data_prep`): raw vocal stems to features."""

from __future__ import annotations

import argparse
import os

from data_prep import STAGES
from data_prep.config import PrepConfig
from data_prep.inputs import check_prep_inputs
from voiceconv.core.errors import ArgumentParser, VoiceconvError


def build_parser(prog: str = "voiceconv prep") -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=prog, description="Prepare a singing corpus: ingest, clean, segment, features, "
        "stats. CORPUS is <corpus>/<singer>/**/<audio> or a Kaldi data dir (wav.scp, utt2spk).")
    parser.add_argument("corpus", help="corpus folder (not needed for stages after ingest)")
    parser.add_argument("out", help="output folder; rerunning resumes and skips finished work")
    parser.add_argument("--stage", choices=(*STAGES, "all"), default="all",
                        help="run one stage, or all of them in order (default)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: all cores); output is the same for any N")
    parser.add_argument("--config", help="YAML with sections features/ingest/clean/segment")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None, prog: str = "voiceconv prep") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.jobs < 1:
        raise VoiceconvError(f"--jobs must be at least 1 (got {args.jobs})")
    config = PrepConfig.from_yaml(args.config) if args.config else PrepConfig()
    stages = STAGES if args.stage == "all" else (args.stage,)
    check_prep_inputs(args.corpus, args.out, stages)
    # Imported once the inputs pass: the pipeline brings torch and librosa (seconds).
    from data_prep.pipeline import format_summary, run_prep

    report = run_prep(args.corpus, args.out, config, stages, args.jobs, not args.quiet)
    print(format_summary(report))
    # Whichever per-item stage ran last kept nothing: there is nothing to train on.
    if any(s.name != "stats" for s in report.stages) and not report.rows:
        raise VoiceconvError(f"no usable audio in {args.corpus}: {len(report.rejects)} inputs "
                             f"rejected (reasons in {args.out}/rejects.jsonl)")
    return 0
