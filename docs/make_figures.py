"""Draw the README's figures from a finished demo run (`bash recipes/demo/run.sh`):

  docs/figures/demo_spectrograms.png  log-mel and F0 of a held-out song before and after
                                      conversion (NIT-F001 -> PJS), first 8 seconds
  docs/figures/demo_training.png      CycleGAN training curves of the demo (losses, validation)

Usage: python docs/make_figures.py [--exp checkpoints/demo] [--out docs/figures]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from voiceconv.core.audio import load_mono  # noqa: E402
from voiceconv.core.features import FeatureConfig, LogMelSpectrogram, extract_f0  # noqa: E402
from voiceconv.core.plotting import png_bytes, pyplot  # noqa: E402

SONG = "nitech_jp_song070_f001_029"


def spectrograms(exp: Path, out: Path, seconds: float = 8.0) -> None:
    config = FeatureConfig()
    mel = LogMelSpectrogram(config)
    source = REPO / "recipes" / "demo" / "audio" / "nit_f001" / f"{SONG}.flac"
    converted = next((exp / "converted" / "a2b").glob(f"{SONG}.*"))
    plt = pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, layout="constrained")
    hop_s = config.hop_length / config.sample_rate
    for ax, (title, path) in zip(axes, [("NIT-F001, held-out song (source)", source),
                                        ("converted to PJS (demo model, WORLD vocoder)",
                                         converted)], strict=True):
        audio = load_mono(path, config.sample_rate)[: int(seconds * config.sample_rate)]
        with torch.no_grad():
            m = mel(torch.from_numpy(audio)[None])[0].numpy()
        f0 = extract_f0(audio, config)
        t = np.arange(m.shape[1]) * hop_s
        ax.imshow(m, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, t[-1] if len(t) else seconds, 0, m.shape[0]))
        ax.set_ylabel("mel bin")
        ax.set_title(title, fontsize=10, loc="left")
        f0_axis = ax.twinx()
        ft = np.arange(len(f0)) * hop_s
        f0_axis.plot(ft, np.where(f0 > 0, f0, np.nan), color="cyan", lw=1.2)
        f0_axis.set_ylabel("F0 (Hz)", color="cyan")
        f0_axis.set_ylim(0, 1000)
    axes[-1].set_xlabel("time (s)")
    (out / "demo_spectrograms.png").write_bytes(png_bytes(fig, dpi=90))


def training_curves(exp: Path, out: Path) -> None:
    with open(exp / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))

    def series(key: str) -> tuple[list[int], list[float]]:
        pairs = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    for key in ("train/g_adversarial", "train/g_cycle", "train/g_identity", "train/g_neighbour",
                "train/d_loss"):
        left.plot(*series(key), label=key.removeprefix("train/"), lw=1)
    left.set_xlabel("step")
    left.set_title("training losses", fontsize=10, loc="left")
    left.legend(fontsize=8)
    for key in ("val/mcd_mean_envelope", "val/mcd_mean_envelope_source", "val/mcd_cycle_a"):
        right.plot(*series(key), marker="o", label=key.removeprefix("val/"), lw=1)
    right.set_xlabel("step")
    right.set_ylabel("dB")
    right.set_title("validation (held-out segments)", fontsize=10, loc="left")
    right.legend(fontsize=8)
    (out / "demo_training.png").write_bytes(png_bytes(fig, dpi=90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp", type=Path, default=REPO / "checkpoints" / "demo")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    spectrograms(args.exp, args.out)
    training_curves(args.exp, args.out)
    print(f"wrote {args.out}/demo_spectrograms.png and demo_training.png")


if __name__ == "__main__":
    main()
