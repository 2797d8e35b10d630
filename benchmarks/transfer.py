"""Transfer learning, measured: the same pair trained twice with the same steps and data, from
scratch and fine-tuned from a pretrained base (`voiceconv pretrain`), on little data.

--pair mbrola (parallel, objective): us2 -> us3 non-parallel on disjoint training melodies
(--minutes of each voice: us2 on the first melodies, us3 on melodies from the second half),
scored on the six parallel dev melodies, which the base never saw: validation MCD of converted
us2 against the real us3 (mel-cepstral, sample-aligned), logged every --eval-every steps, and
the source's own MCD beside it. The table shows both runs at each step count, the first step
at which the transfer run reaches the scratch run's final MCD, and the final difference.

--pair singing (real singing): NIT-F001 -> PJS on --minutes of each singer's songs, then every
--eval-every steps the held-out NIT-F001 song 029 is converted (WORLD vocoder; --key, default
auto: into PJS's range, an octave down, as in the demo) and measured with `voiceconv eval --mode
nonparallel`: speaker similarity to the held-out PJS song 020 (and the unconverted song's, the
baseline), F0 RMSE / median deviation / gross pitch error against the source (in the new key),
and the validation distance of the average timbre to PJS. The base recipe holds
both songs out.

Usage: python benchmarks/transfer.py --base pretrained:singing-base-small (or a checkpoint)
       [--pair mbrola|singing] [--corpus ../shared/data/mbrola] [--singing ../shared/data/singing]
       [--minutes 1] [--steps 600] [--eval-every 100] [--freeze-steps 100]
       [--encoder-lr-scale 0.3] [--key auto] [--out benchmarks/out/transfer/<pair>]
       [--fit-args "..."]   (voiceconv fit options for both runs, e.g. another generator)
Reruns reuse the prep output and resume unfinished runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.common import machine  # noqa: E402
from voiceconv.convert.command import parse_key  # noqa: E402
from voiceconv.core.checkpoint import read_checkpoint  # noqa: E402
from voiceconv.core.errors import VoiceconvError  # noqa: E402
from voiceconv.core.pretrained import resolve  # noqa: E402


def mbrola_data_dirs(corpus: Path, out: Path, minutes: float) -> dict[str, float]:
    """Kaldi-style train/ (us2 and us3 on disjoint melodies, about `minutes` each, or all that
    half of the melodies holds) and dev/; returns the minutes of each voice taken."""
    melodies = sorted((corpus / "train" / "us2").glob("*.flac"))
    half = len(melodies) // 2
    lists = {"train": [], "dev": []}
    taken = {}
    for voice, pool in (("us2", melodies[:half]), ("us3", melodies[half:])):
        seconds = 0.0
        for path in pool:
            if seconds >= 60 * minutes:
                break
            path = corpus / "train" / voice / path.name
            lists["train"].append((voice, path))
            seconds += sf.info(path).duration
        taken[voice] = seconds / 60
    for voice in ("us2", "us3"):
        lists["dev"] += [(voice, p) for p in sorted((corpus / "dev" / voice).glob("*.flac"))]
    for split, rows in lists.items():
        folder = out / "data" / split
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "wav.scp").write_text("".join(f"{v}-{p.stem} {p.resolve()}\n" for v, p in rows))
        (folder / "utt2spk").write_text("".join(f"{v}-{p.stem} {v}\n" for v, p in rows))
    return taken


SINGING_SOURCE, SINGING_TARGET = "nit_f001", "pjs"
SINGING_EVAL = {"nit_f001": "nitech_jp_song070_f001_029", "pjs": "pjs020_song"}


def singing_data_dirs(singing: Path, out: Path, minutes: float) -> None:
    """train/ (about `minutes` of each singer's songs, never the evaluation songs) and the
    `voiceconv eval` folders: eval/source/<song> and eval/reference/<song> (the target's
    held-out song under the source song's name, so that eval pairs them)."""
    rows = []
    for singer in (SINGING_SOURCE, SINGING_TARGET):
        seconds = 0.0
        for path in sorted((singing / singer).glob("*.flac")):
            if path.stem == SINGING_EVAL[singer] or seconds >= 60 * minutes:
                continue
            rows.append((singer, path))
            seconds += sf.info(path).duration
    folder = out / "data" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wav.scp").write_text("".join(f"{v}-{p.stem} {p.resolve()}\n" for v, p in rows))
    (folder / "utt2spk").write_text("".join(f"{v}-{p.stem} {v}\n" for v, p in rows))
    song = SINGING_EVAL[SINGING_SOURCE]
    for kind, singer in (("source", SINGING_SOURCE), ("reference", SINGING_TARGET)):
        (out / "eval" / kind).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(singing / singer / f"{SINGING_EVAL[singer]}.flac",
                        out / "eval" / kind / f"{song}.flac")


def run(*args: str) -> None:
    """A command line; "voiceconv" is this interpreter's (no need for it on PATH)."""
    print("+", " ".join(args), flush=True)
    if args[0] == "voiceconv":
        args = (sys.executable, "-m", "voiceconv.cli", *args[1:])
    subprocess.run(args, check=True, cwd=REPO)


def logged(metrics: Path, key: str) -> dict[int, float]:
    """step -> the last value of `key` logged at that step in a run's metrics.csv."""
    out = {}
    with open(metrics) as fh:
        for row in csv.DictReader(fh):
            if row.get(key):
                out[int(row["step"])] = float(row[key])
    return out


def fit_command(args: argparse.Namespace, out: Path, pair_config: str,
                *data: str) -> list[str]:
    """`voiceconv fit` of the small CycleGAN on the pair; the same for both runs, on what the
    base was pretrained on (mels or their spectral envelopes)."""
    return ["voiceconv", "fit", "--config", "recipes/common/conf/cyclegan_small.yaml",
            "--config", pair_config, *data, "--experiments_root", str(out),
            "--data.init_args.spectral_envelope", str(args.envelope).lower(),
            "--trainer.val_check_interval", str(args.eval_every),
            "--checkpoint_every_n_steps", str(args.eval_every),
            "--preview_every_n_steps", "0", "--wandb", "false", "--ckpt_path", "last",
            *args.fit_args.split()]


def mbrola_pair(args: argparse.Namespace, out: Path, transfer: list[str]) -> None:
    taken = mbrola_data_dirs(args.corpus, out, args.minutes)
    prep_config = REPO / "recipes" / "mbrola" / "conf" / "prep.yaml"
    for split in ("train", "dev"):
        run("voiceconv", "prep", str(out / "data" / split), str(out / f"prep_{split}"),
            "--config", str(prep_config))
    common = [*fit_command(args, out, "recipes/mbrola/conf/fit.yaml",
                           "--data.init_args.prep_dir", str(out / "prep_train"),
                           "--data.init_args.val_prep_dir", str(out / "prep_dev")),
              "--trainer.max_steps", str(args.steps)]
    run(*common, "--experiment", "scratch")
    run(*common, "--experiment", "transfer", *transfer)

    scratch, tuned = (logged(out / name / "metrics.csv", "val/mcd_parallel")
                      for name in ("scratch", "transfer"))
    source = logged(out / "scratch" / "metrics.csv", "val/mcd_parallel_source")
    steps = sorted(set(scratch) & set(tuned))
    print(f"pair: mbrola us2 -> us3, {args.minutes:g} min per voice asked, "
          f"{taken['us2']:.1f} / {taken['us3']:.1f} min taken (disjoint melodies: half of the "
          "corpus each at most), dev MCD (dB, mel-cepstral, 6 parallel melodies)\n")
    print("| steps | source us2 vs us3 | from scratch | from base | difference |")
    print("|---|---|---|---|---|")
    for step in steps:
        s, t = scratch[step], tuned[step]
        print(f"| {step} | {source[step]:.2f} | {s:.2f} | {t:.2f} | {t - s:+.2f} |")
    if steps:
        final = scratch[steps[-1]]
        reached = next((step for step in steps if tuned[step] <= final), None)
        print(f"\nscratch final MCD {final:.2f} dB at step {steps[-1]}; from the base reached at "
              f"step {reached if reached is not None else 'never'}; final difference "
              f"{tuned[steps[-1]] - final:+.2f} dB")


def singing_pair(args: argparse.Namespace, out: Path, transfer: list[str]) -> None:
    singing_data_dirs(args.singing, out, args.minutes)
    run("voiceconv", "prep", str(out / "data" / "train"), str(out / "prep"),
        "--config", str(REPO / "recipes" / "demo" / "conf" / "prep.yaml"))
    common = fit_command(args, out, "recipes/demo/conf/fit.yaml",
                         "--data.init_args.prep_dir", str(out / "prep"))
    song = SINGING_EVAL[SINGING_SOURCE]
    results: dict[tuple[str, int], dict] = {}
    steps = list(range(args.eval_every, args.steps + 1, args.eval_every))
    for name, extra in (("scratch", []), ("transfer", transfer)):
        for step in steps:
            # Train up to `step` (resuming the previous segment exactly), convert, measure.
            result = out / name / f"eval-step{step:06d}"
            if not (result / "metrics.json").is_file():
                run(*common, "--experiment", name, "--trainer.max_steps", str(step), *extra)
                converted = out / name / f"converted-step{step:06d}"
                run("voiceconv", "convert", str(out / "eval" / "source" / f"{song}.flac"),
                    "--model", str(out / name / "checkpoints" / "last.ckpt"),
                    "--direction", "a2b", "--vocoder", "world", "--key", args.key,
                    "--out", str(converted))
                run("voiceconv", "eval", "--converted", str(converted),
                    "--reference", str(out / "eval" / "reference"),
                    "--source", str(out / "eval" / "source"), "--mode", "nonparallel",
                    "--out", str(result), "--quiet",
                    *(["--transposed"] if parse_key(args.key) != 0 else []))
            results[name, step] = json.loads((result / "metrics.json").read_text())
    timbre = {name: logged(out / name / "metrics.csv", "val/mcd_mean_envelope")
              for name in ("scratch", "transfer")}
    before = results["scratch", steps[0]]["speaker_sim_target_unconverted"]
    print(f"pair: NIT-F001 -> PJS, {args.minutes:g} min per singer; held-out NIT-F001 song 029 "
          f"converted (WORLD, --key {args.key}); speaker similarity to the held-out PJS song "
          f"020 (the unconverted song: {before:.3f}); F0 against the source; average-timbre "
          f"distance to PJS (validation, dB)\n")
    print("| steps | run | speaker sim. to PJS | F0 RMSE (cents) | F0 median dev. (cents) "
          "| gross pitch error | timbre distance dB |")
    print("|---|---|---|---|---|---|---|")
    for step in steps:
        for name, label in (("scratch", "from scratch"), ("transfer", "from base")):
            r = results[name, step]
            # Lightning logs a validation at the step before it ran (99 for step 100), and
            # one step later after a resume: take the one logged in this segment.
            logged_here = [v for k, v in timbre[name].items() if step - args.eval_every < k <= step]
            distance = logged_here[-1] if logged_here else float("nan")
            print(f"| {step} | {label} | {r['speaker_sim_target']:.3f} | "
                  f"{r['f0_rmse_cents']:.0f} | {r['f0_median_cents']:.1f} | "
                  f"{r['gross_pitch_error']:.3f} | {distance:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True,
                        help="a `voiceconv pretrain` checkpoint or pretrained:<name>")
    parser.add_argument("--pair", choices=("mbrola", "singing"), default="mbrola")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "data" / "mbrola")
    parser.add_argument("--singing", type=Path,
                        default=REPO.parent / "shared" / "data" / "singing")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--freeze-steps", type=int, default=100)
    parser.add_argument("--encoder-lr-scale", type=float, default=0.3)
    parser.add_argument("--key", default="auto",
                        help="singing pair: convert --key (auto: into the target's range)")
    parser.add_argument("--out", type=Path, help="default benchmarks/out/transfer/<pair>")
    parser.add_argument("--fit-args", default="", help="more voiceconv fit options, both runs")
    args = parser.parse_args()
    try:
        parse_key(args.key)  # before any training, not after the first segment
    except VoiceconvError as error:
        parser.error(str(error))
    out = (args.out or REPO / "benchmarks" / "out" / "transfer" / args.pair).resolve()
    args.base = Path(resolve(args.base))
    base_hparams = read_checkpoint(str(args.base), "pretrain")["hyper_parameters"]
    args.envelope = bool(base_hparams.get("spectral_envelope"))
    transfer = ["--model.init_args.init_from", str(args.base.resolve()),
                "--model.init_args.transfer.freeze_encoder_steps", str(args.freeze_steps),
                "--model.init_args.transfer.encoder_lr_scale", str(args.encoder_lr_scale)]
    pair = mbrola_pair if args.pair == "mbrola" else singing_pair
    pair(args, out, transfer)
    print(f"\nmachine: {machine()}")
    print(f"base {args.base}; transfer: encoders frozen {args.freeze_steps} steps, then "
          f"{args.encoder_lr_scale:g} x lr; fit options: {args.fit_args or 'the small config'}")


if __name__ == "__main__":
    main()
