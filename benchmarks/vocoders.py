"""Copy-synthesis quality and speed of every vocoder on held-out real singing.

Each file is analysed (log-mel and F0, the prep defaults), re-rendered by each vocoder from its
true mel and F0, and measured against the original with `voiceconv eval`: MCD (WORLD
mel-cepstra, sample-aligned), F0 deviation and gross pitch error (frames off by > 50 cents, and
the conventional > 20 %) against the original's F0, V/UV error (analysis at 16 kHz, the band
the 0-8 kHz mel describes), DNSMOS OVRL of the render (naturalness, no reference needed);
plus rendering speed
(x real time, median of repeats) on this machine, and F0 control: each file rendered again from
the same mel with the F0 raised by 200 cents, and how far the output's F0 moved (median over
frames voiced in both renders): 200 for a vocoder whose pitch follows its F0 input, 0 for one
that takes its pitch from the mel's harmonics. A key shift needs the first kind.

Usage: python benchmarks/vocoders.py [FILE ...] [--seconds 20] [--repeats 3] [--out DIR]
                                    [--vocoders NAME|CKPT|nsf-small-untrained ...]
                                    [--precisions auto|fp32|bf16 ...]
`nsf-small-untrained` times the small NSF-HiFi-GAN generator with random weights (weight norm
removed, as when loaded from a checkpoint): speed does not depend on the weights, so it needs
no training; its quality columns are left empty.
Default files: PJS songs 050-052 (never in the demo's training data) and the held-out NIT-F001
song 029, from ../shared/data/singing (first --seconds of each).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine, precision_row  # noqa: E402
from voiceconv.core.audio import load_mono, write_audio  # noqa: E402
from voiceconv.core.feature_config import FeatureConfig  # noqa: E402
from voiceconv.core.features import LogMelSpectrogram, compute_features  # noqa: E402
from voiceconv.core.metrics import FRAME_PERIOD_MS, F0Metrics, f0_metrics, f0_track  # noqa: E402
from voiceconv.core.pretrained import PREFIX  # noqa: E402
from voiceconv.core.vocoder_names import PRECISIONS  # noqa: E402
from voiceconv.eval.command import evaluate  # noqa: E402
from voiceconv.models.vocoders import NAMES, load_vocoder  # noqa: E402
from voiceconv.models.vocoders.f0_response import f0_response_cents  # noqa: E402
from voiceconv.models.vocoders.nsf import NSF_SMALL, NSFHiFiGAN  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "singing"
DEFAULT_FILES = [SHARED / "pjs" / f"pjs0{n}_song.flac" for n in (50, 51, 52)] + [
    SHARED / "nit_f001" / "nitech_jp_song070_f001_029.flac"]
UNTRAINED = "nsf-small-untrained"
# Measured at 16 kHz: the mel stops at fmax = 8 kHz, so no vocoder can know the band above it,
# and at 22.05 kHz that band alone dominates the MCD.
EVAL_RATE = 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vocoders", nargs="+", default=list(NAMES),
                        help="names or trained vocoder checkpoints")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=["auto"],
                        help="neural vocoders are measured at each (auto: bf16 where the "
                        "device has bf16 units)")
    args = parser.parse_args()
    config = FeatureConfig()
    mel_of = LogMelSpectrogram(config)
    out = args.out or Path(tempfile.mkdtemp(prefix="vocoders-"))
    inputs = []
    for path in args.files:
        audio = load_mono(path, config.sample_rate)[: int(args.seconds * config.sample_rate)]
        feats = compute_features(audio, config, mel_of)
        write_audio(out / "reference" / path.name, feats.audio, config.sample_rate, "PCM_24")
        inputs.append((path.name, torch.from_numpy(feats.mel)[None],
                       torch.from_numpy(feats.f0)[None]))
    seconds = sum(mel.shape[-1] for _, mel, _ in inputs) * config.hop_length / config.sample_rate
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(machine())
    print(f"{len(inputs)} files, {seconds:.0f} s of singing; device {device}; out {out}")
    print(f"{'vocoder':26} {'MCD dB':>7} {'F0 med c':>9} {'GPE':>6} {'GPE 20%':>7} "
          f"{'V/UV err':>8} {'F0 RMSE c':>9} {'DNSMOS':>6} {'x real time':>11} "
          f"{'F0 +200 c moves':>15}")
    floor = [given_f0_against_original(out / "reference" / n, f0[0].numpy(), config)
             for n, _, f0 in inputs]
    print(f"{'(the F0 given, no vocoder)':26} {'':7} "
          f"{statistics.mean(m.median_cents for m in floor):9.1f} "
          f"{statistics.mean(m.gross_pitch_error for m in floor):6.3f} "
          f"{statistics.mean(m.gross_pitch_error_20pct for m in floor):7.3f}", flush=True)
    for choice, precision in itertools.product(args.vocoders, args.precisions):
        if choice == UNTRAINED:
            vocoder, name = NSFHiFiGAN(NSF_SMALL, config).eval(), choice
            vocoder.generator.remove_weight_norm()
        else:
            vocoder = load_vocoder(choice, config)
            name = row_name(choice, vocoder)
        name = precision_row(vocoder, name, precision, args.precisions)
        if name is None:
            continue
        vocoder = vocoder.to(device)
        times = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            rendered = [(n, vocoder.render(mel, f0)) for n, mel, f0 in inputs]
            times.append(time.perf_counter() - start)
            if repeat == 0:
                for n, audio in rendered:
                    write_audio(out / name / n, audio[0].numpy(), config.sample_rate, "PCM_24")
        speed = seconds / statistics.median(times)
        if choice == UNTRAINED:
            print(f"{name:26} {'':7} {'':9} {'':6} {'':7} {'':8} {'':9} {'':6} {speed:10.1f}x",
                  flush=True)
            continue
        summary = evaluate(out / name, out / "reference", out / f"{name}-eval",
                           sample_rate=EVAL_RATE, progress=False)
        moved = f0_control(vocoder, inputs)
        print(f"{name:26} {summary['mcd_db']:7.2f} {summary['f0_median_cents']:9.1f} "
              f"{summary['gross_pitch_error']:6.3f} {summary['gross_pitch_error_20pct']:7.3f} "
              f"{summary['vuv_error']:8.3f} "
              f"{summary['f0_rmse_cents']:9.1f} {summary['dnsmos_ovrl']:6.2f} {speed:10.1f}x "
              f"{moved:13.0f} c",
              flush=True)


def row_name(choice: str, vocoder) -> str:
    """A vocoder by its name, a shipped one by its entry, a trained one after its experiment
    (checkpoints/<exp>/checkpoints/x.ckpt)."""
    if choice in NAMES:
        return vocoder.name
    if choice.startswith(PREFIX):
        return choice.removeprefix(PREFIX)
    return f"{vocoder.name}:{Path(choice).resolve().parent.parent.name}"


def f0_control(vocoder, inputs: list) -> float:
    """Median shift (cents) of the output F0, over every file's frames, when the F0 given is
    raised by PROBE_CENTS."""
    return float(np.median(np.concatenate([f0_response_cents(vocoder, mel, f0)
                                           for _, mel, f0 in inputs])))


def given_f0_against_original(reference: Path, f0: np.ndarray, config: FeatureConfig) -> F0Metrics:
    """The floor of the F0 columns: the F0 every F0-driven vocoder is given (the prep's track,
    one value per hop), interpolated onto eval's 5 ms frames and measured against eval's own
    F0 track of the original, as a perfect F0-driven vocoder would score."""
    reference_f0 = f0_track(load_mono(reference, EVAL_RATE), EVAL_RATE)
    times = np.arange(len(reference_f0)) * FRAME_PERIOD_MS / 1000
    centres = (np.arange(len(f0)) + 0.5) * config.hop_length / config.sample_rate
    voiced = f0 > 0
    hop_s = config.hop_length / config.sample_rate
    nearest = np.clip(np.round(times / hop_s - 0.5).astype(int), 0, len(f0) - 1)
    given = np.exp(np.interp(times, centres[voiced], np.log(f0[voiced])))
    return f0_metrics(reference_f0, np.where(voiced[nearest], given, 0.0))


if __name__ == "__main__":
    main()
