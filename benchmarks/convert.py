"""End-to-end speed of `voiceconv convert` on a 3-minute stem, per stage.

Converts one 3-minute vocal stem (held-out NIT-F001 song 029 from the demo audio, looped to
length, 48 kHz; with `--breaks-s B`, B seconds of near-silence after each repeat, as in the
vocal stem of a song with instrumental breaks) with each F0 method x vocoder, through the
same `Converter.convert_file` the CLI runs, and prints the median over repeats of the time
spent reading (decode + resample), in F0 analysis, mel, generator, vocoder and writing (stages
that run on several chunks at once in threads add up their threads' time), and the
wall-clock whole as x real time; "1st x RT" is the first run alone, which pays the one-off
set-up a CLI conversion pays (a neural vocoder's convolutions for each new input shape). The
first row (harvest + world, the defaults for a harvest-prepped model) is the baseline.

The generator has the `small` config; its weights are untrained unless --model is given (speed
does not depend on them). `--spectral-envelope` times an untrained model that converts spectral
envelopes (the recipes' setting: the envelope of each chunk is computed before the generator).

Usage: python benchmarks/convert.py [--model CKPT | --spectral-envelope] [--seconds 180]
                                    [--breaks-s 0] [--repeats 3] [--device auto|cpu|cuda]
                                    [--vocoders world|pretrained:NAME|CKPT ...]
                                    [--precisions auto|fp32|bf16 ...]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine, precision_row  # noqa: E402
from voiceconv.convert.converter import Converter, ConvertSettings  # noqa: E402
from voiceconv.core.feature_config import FeatureConfig  # noqa: E402
from voiceconv.core.vocoder_names import PRECISIONS  # noqa: E402
from voiceconv.models.generator import SMALL  # noqa: E402
from voiceconv.models.pair import SingerPair  # noqa: E402
from voiceconv.models.vocoders import load_vocoder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SONG = REPO / "recipes" / "demo" / "audio" / "nit_f001" / "nitech_jp_song070_f001_029.flac"
STAGES = ("read", "f0", "mel", "generator", "vocoder", "write")
RUNS = [("harvest", "world"), ("dio", "world"), ("dio", "griffin-lim"),
        ("dio", "hifigan-universal")]
# NIT-F001's sung range in the demo's prep (F0 percentiles, Hz): the converter searches F0
# within it, widened by an octave each way. --full-f0-range: the features' whole range.
NIT_F001_RANGE = {"p5": 282.3, "p50": 407.3, "p95": 582.4}


def untrained_pair(config: FeatureConfig, spectral_envelope: bool,
                   full_f0_range: bool) -> SingerPair:
    percentiles = {"p5": None, "p50": None, "p95": None} if full_f0_range else NIT_F001_RANGE
    stats = {"mel_mean": [0.0] * config.n_mels, "mel_std": [1.0] * config.n_mels,
             "f0_percentiles_hz": percentiles}
    return SingerPair(SMALL, config, {"a": stats, "b": stats}, spectral_envelope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--spectral-envelope", action="store_true")
    parser.add_argument("--full-f0-range", action="store_true",
                        help="search F0 over the features' whole range (before 2026-12-03)")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--breaks-s", type=float, default=0.0,
                        help="seconds of near-silence (-80 dBFS noise) after each repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--vocoders", nargs="+", default=sorted({v for _, v in RUNS}),
                        help="only the rows with these vocoders; another vocoder (a checkpoint, "
                        "pretrained:NAME) gets a harvest row")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=["auto"],
                        help="a neural vocoder's rows at each (auto: bf16 where the device "
                        "has bf16 units)")
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else args.device
    pair = SingerPair.from_checkpoint(str(args.model)) if args.model else \
        untrained_pair(FeatureConfig(), args.spectral_envelope, args.full_f0_range)
    work = Path(tempfile.mkdtemp(prefix="convert-bench-"))
    x, rate = sf.read(SONG, dtype="float32")
    n = int(args.seconds * rate)
    gap = np.random.default_rng(0).standard_normal(int(args.breaks_s * rate)) * 1e-4
    song = np.concatenate([x, gap.astype(np.float32)])
    stem = work / "stem.flac"
    sf.write(stem, np.tile(song, n // song.shape[0] + 1)[:n], rate, subtype="PCM_16")
    f0_range = "the features' whole range" if args.full_f0_range else "the singer's range"
    print(f"{machine()}; device {device}; "
          f"{'spectral envelopes' if pair.spectral_envelope else 'whole mels'}; F0 searched "
          f"in {f0_range}")
    breaks = f", a {args.breaks_s:g} s break after each repeat" if args.breaks_s else ""
    print(f"{args.seconds:.0f} s stem at {rate} Hz{breaks}, median of {args.repeats} runs; "
          f"seconds per stage, summed over the {torch.get_num_threads()} threads that work on "
          "chunks at once (so they can add up to more than the wall-clock total)")
    print(f"{'F0':8} {'vocoder':30} " + " ".join(f"{s:>9}" for s in STAGES) +
          f" {'total':>8} {'x RT':>7} {'1st x RT':>8} {'vs base':>8}")
    baseline = None
    named = {v for _, v in RUNS}
    rows = [run for run in RUNS if run[1] in args.vocoders] + [
        ("harvest", name) for name in args.vocoders if name not in named]
    for (f0_method, choice), precision in itertools.product(rows, args.precisions):
        vocoder = load_vocoder(choice, pair.feature_config)
        vocoder_name = precision_row(vocoder, choice, precision, args.precisions)
        if vocoder_name is None:
            continue
        converter = Converter(pair, vocoder, ConvertSettings(f0_method=f0_method), device)
        runs = [converter.convert_file(stem, work / "out.wav") for _ in range(args.repeats)]
        stage = {s: statistics.median(r.seconds.get(s, 0.0) for r in runs) for s in STAGES}
        total = statistics.median(r.wall_s for r in runs)
        baseline = baseline or total
        print(f"{f0_method:8} {vocoder_name:30} " +
              " ".join(f"{stage[s]:9.2f}" for s in STAGES) +
              f" {total:8.2f} {args.seconds / total:7.1f} {args.seconds / runs[0].wall_s:8.1f}"
              f" {baseline / total:7.1f}x", flush=True)


if __name__ == "__main__":
    main()
