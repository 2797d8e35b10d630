"""Transfer learning, measured: the same pair trained twice with the same steps and data, from
scratch and fine-tuned from a pretrained base (`voiceconv pretrain`), on little data.

The pair is mbrola us2 -> us3 non-parallel on disjoint training melodies (--minutes of each
voice: us2 on the first melodies, us3 on melodies from the second half), scored on the six
parallel dev melodies, which the base never saw: validation MCD of converted us2 against the
real us3 (mel-cepstral, sample-aligned), logged every --eval-every steps, and the source's own
MCD beside it. The table shows both runs at each step count, the first step at which the
transfer run reaches the scratch run's final MCD, and the final difference.

Usage: python benchmarks/transfer.py --base checkpoints/pretrain_pool_small/checkpoints/last.ckpt
       [--corpus ../shared/data/mbrola] [--minutes 1] [--steps 600] [--eval-every 100]
       [--freeze-steps 100] [--encoder-lr-scale 0.3] [--out benchmarks/out/transfer]
       [--fit-args "..."]   (voiceconv fit options for both runs, e.g. another generator)
Reruns reuse the prep output and resume unfinished runs.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.common import machine  # noqa: E402


def data_dirs(corpus: Path, out: Path, minutes: float) -> None:
    """Kaldi-style train/ (us2 and us3 on disjoint melodies, about `minutes` each) and dev/."""
    melodies = sorted((corpus / "train" / "us2").glob("*.flac"))
    half = len(melodies) // 2
    lists = {"train": [], "dev": []}
    for voice, pool in (("us2", melodies[:half]), ("us3", melodies[half:])):
        seconds = 0.0
        for path in pool:
            if seconds >= 60 * minutes:
                break
            path = corpus / "train" / voice / path.name
            lists["train"].append((voice, path))
            seconds += sf.info(path).duration
    for voice in ("us2", "us3"):
        lists["dev"] += [(voice, p) for p in sorted((corpus / "dev" / voice).glob("*.flac"))]
    for split, rows in lists.items():
        folder = out / "data" / split
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "wav.scp").write_text("".join(f"{v}-{p.stem} {p.resolve()}\n" for v, p in rows))
        (folder / "utt2spk").write_text("".join(f"{v}-{p.stem} {v}\n" for v, p in rows))


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, cwd=REPO)


def val_mcd(metrics: Path) -> dict[int, tuple[float, float]]:
    """step -> (converted vs target, source vs target) validation MCD, last value per step."""
    out = {}
    with open(metrics) as fh:
        for row in csv.DictReader(fh):
            if row.get("val/mcd_parallel"):
                out[int(row["step"])] = (float(row["val/mcd_parallel"]),
                                         float(row["val/mcd_parallel_source"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, type=Path)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "data" / "mbrola")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--freeze-steps", type=int, default=100)
    parser.add_argument("--encoder-lr-scale", type=float, default=0.3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "transfer")
    parser.add_argument("--fit-args", default="", help="more voiceconv fit options, both runs")
    args = parser.parse_args()
    out = args.out.resolve()
    data_dirs(args.corpus, out, args.minutes)
    prep_config = REPO / "recipes" / "mbrola" / "conf" / "prep.yaml"
    for split in ("train", "dev"):
        run("voiceconv", "prep", str(out / "data" / split), str(out / f"prep_{split}"),
            "--config", str(prep_config))
    common = ["voiceconv", "fit", "--config", "recipes/common/conf/cyclegan_small.yaml",
              "--config", "recipes/mbrola/conf/fit.yaml",
              "--data.init_args.prep_dir", str(out / "prep_train"),
              "--data.init_args.val_prep_dir", str(out / "prep_dev"),
              "--experiments_root", str(out), "--trainer.max_steps", str(args.steps),
              "--trainer.val_check_interval", str(args.eval_every),
              "--checkpoint_every_n_steps", str(args.eval_every),
              "--preview_every_n_steps", "0", "--wandb", "false", "--ckpt_path", "last",
              *args.fit_args.split()]
    transfer = ["--model.init_args.init_from", str(args.base.resolve()),
                "--model.init_args.transfer.freeze_encoder_steps", str(args.freeze_steps),
                "--model.init_args.transfer.encoder_lr_scale", str(args.encoder_lr_scale)]
    run(*common, "--experiment", "scratch")
    run(*common, "--experiment", "transfer", *transfer)

    scratch, tuned = (val_mcd(out / name / "metrics.csv") for name in ("scratch", "transfer"))
    steps = sorted(set(scratch) & set(tuned))
    print(f"\nmachine: {machine()}")
    print(f"pair: mbrola us2 -> us3, {args.minutes:g} min per voice (disjoint melodies), "
          f"dev MCD (dB, mel-cepstral, 6 parallel melodies); base {args.base}")
    print(f"transfer: encoders frozen {args.freeze_steps} steps, then "
          f"{args.encoder_lr_scale:g} x lr; fit options: {args.fit_args or 'the small config'}\n")
    print("| steps | source us2 vs us3 | from scratch | from base | difference |")
    print("|---|---|---|---|---|")
    for step in steps:
        s, t = scratch[step][0], tuned[step][0]
        print(f"| {step} | {scratch[step][1]:.2f} | {s:.2f} | {t:.2f} | {t - s:+.2f} |")
    if steps:
        final = scratch[steps[-1]][0]
        reached = next((step for step in steps if tuned[step][0] <= final), None)
        print(f"\nscratch final MCD {final:.2f} dB at step {steps[-1]}; from the base reached at "
              f"step {reached if reached is not None else 'never'}; final difference "
              f"{tuned[steps[-1]][0] - final:+.2f} dB")


if __name__ == "__main__":
    main()
