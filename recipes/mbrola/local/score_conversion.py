"""Score a fitted CycleGAN on the parallel mbrola dev melodies.

Renders, for every dev melody of the source voice: the source copy-synthesised through the
vocoder, and the source converted toward the target (plainly, and with its frames matched to
the target's training frames: `voiceconv convert --match-k`) and rendered by the same vocoder;
then measures each (and the raw source) against the real target with `voiceconv eval` (MCD on
WORLD mel-cepstra, sample-aligned) and against the source's own F0 (the melody must survive).

Usage: score_conversion.py CKPT CORPUS SOURCE TARGET OUT [--vocoder NAME] [--match-k K]
Prints one table and writes OUT/{raw,vocoded,converted,matched}/metrics.json and report.html.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from voiceconv.core.audio import load_mono, write_audio
from voiceconv.core.features import LogMelSpectrogram, compute_features
from voiceconv.eval.command import evaluate
from voiceconv.fit.cyclegan import load_model
from voiceconv.models.vocoders import NAMES, load_vocoder

ROWS = (("raw", "source vs target (no conversion)"),
        ("vocoded", "source through the vocoder vs target"),
        ("converted", "converted source vs target"),
        ("matched", "converted, matched to the target's frames"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("checkpoint", "corpus", "source", "target", "out"):
        parser.add_argument(name)
    parser.add_argument("--vocoder", default="world", choices=NAMES)
    parser.add_argument("--match-k", type=int, default=32,
                        help="k of the matched row (voiceconv convert --match-k)")
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    config = model.feature_config
    mel_of = LogMelSpectrogram(config)
    vocoder = load_vocoder(args.vocoder, config)
    dev = Path(args.corpus) / "dev"
    out = Path(args.out)
    for path in sorted((dev / args.source).glob("*.flac")):
        feats = compute_features(load_mono(path, config.sample_rate), config, mel_of)
        mel, f0 = torch.from_numpy(feats.mel)[None], torch.from_numpy(feats.f0)[None]
        # Both voices sing in the same octave: the converted voice sings the source F0.
        renders = {"vocoded": vocoder.render(mel, f0),
                   "converted": vocoder.render(model.convert(mel, "a2b", f0), f0),
                   "matched": vocoder.render(model.convert(mel, "a2b", f0,
                                                           match_k=args.match_k), f0)}
        for kind, rendered in renders.items():
            write_audio(out / kind / "audio" / path.name, rendered[0].numpy(),
                        config.sample_rate, subtype="PCM_16")
    results = {}
    for kind, _ in ROWS:
        converted = dev / args.source if kind == "raw" else out / kind / "audio"
        results[kind] = evaluate(converted, dev / args.target, out / kind,
                                 source=dev / args.source, progress=False)
    print(f"{'':40} {'MCD dB':>7} {'F0 med c':>8} {'GPE':>6} {'F0 RMSE c':>9} {'spk→tgt':>7}")
    for kind, label in ROWS:
        s = results[kind]
        print(f"{label:40} {s['mcd_db']:7.2f} {s['f0_median_cents']:8.1f} "
              f"{s['gross_pitch_error']:6.3f} {s['f0_rmse_cents']:9.1f} "
              f"{s['speaker_sim_target']:7.3f}")
    summary = {kind: {k: results[kind][k] for k in ("mcd_db", "f0_median_cents",
                                                    "gross_pitch_error", "f0_rmse_cents",
                                                    "speaker_sim_target")} for kind, _ in ROWS}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
