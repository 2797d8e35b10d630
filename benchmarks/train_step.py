"""Training throughput of the CycleGAN-VC configs (and of the lite NSF-HiFi-GAN vocoder,
`--configs nsf-lite`), side by side with earlier voiceconv commits and with the reference
MaskCycleGAN-VC implementation at the same size, in one run.

Each row is the median, over `--repeats` rounds, of a run's median full training step (D
update, G update, every loss term) on one batch held in memory (the data loader costs nothing
measurable: crops are cut from features already in memory), with the fastest and slowest
round beside it. Each round runs every code and variant once, so a machine whose speed drifts
(a shared host: one varied by 40 % from minute to minute) slows them all alike. A step holds
crops of both singers, so samples/s counts 2 x batch per step (a vocoder step: batch).

- voiceconv rows: this checkout, and each `--compare-to` commit (checked out in a temporary
  git worktree and timed in a child process that imports that commit's code).
- reference row (`paper` config): GANtastic3/MaskCycleGAN-VC's `model.py`, loaded from
  ../shared/reference/ or `--reference` (never imported by the package), stepped through its
  `train.py`'s sequence (G update with all four discriminators, then D update that runs the
  generators again), at batch 1 as it trains.

On a GPU, and on a CPU with bf16 matrix units (AMX or AVX512-BF16), bf16 autocast is measured
too, for voiceconv and the reference (and torch.compile with --compile, on a GPU).

Usage: python benchmarks/train_step.py [--compare-to COMMIT ...] [--configs small paper nsf-lite]
       [--batch-size 4] [--paper-batch-size 1 [4 ...]] [--reference-batch-size 1]
       [--steps 10] [--repeats 3] [--prep DIR] [--bf16 auto|yes|no]
Without --prep, a prep output of the bundled demo excerpts is made in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import itertools
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Its model.py; --reference names another copy (../shared does not travel to a GPU machine).
REFERENCE = REPO.parent / "shared" / "reference" / "maskcyclegan_vc" / "model.py"


def model_from_config(name: str, code_root: Path):
    import yaml

    from voiceconv.fit.cyclegan import (
        CycleGANVC,
        DiscriminatorConfig,
        LossWeights,
        OptimizerConfig,
    )
    from voiceconv.models import GeneratorConfig

    conf = code_root / "recipes" / "common" / "conf" / f"cyclegan_{name}.yaml"
    args = yaml.safe_load(conf.read_text())["model"]["init_args"]
    return CycleGANVC(generator=GeneratorConfig(**args["generator"]),
                      discriminator=DiscriminatorConfig(**args["discriminator"]),
                      loss=LossWeights(**args["loss"]),
                      optimizer=OptimizerConfig(**args["optimizer"]),
                      max_masked_frames=args["max_masked_frames"])


def voiceconv_step_seconds(name: str, prep: Path, singers: list[str], batch: int, crop: int,
                           steps: int, precision: str, compile_model: bool,
                           code_root: Path) -> float:
    """Median seconds per training step of the `name` config, as Lightning runs it."""
    from voiceconv.fit.data import SingerPairData

    data = SingerPairData(str(prep), *singers, crop, batch, num_workers=0, val_segments=1,
                          neighbour_k=16)
    data.setup("fit")
    model = model_from_config(name, code_root)
    if compile_model:
        import torch

        for attr in ("g_ab", "g_ba"):
            setattr(model, attr, torch.compile(getattr(model, attr)))
    return lightning_step_seconds(model, data.train_set.batch(0), steps, precision,
                                  feature_config=data.feature_config,
                                  singer_stats=data.singer_stats)


def vocoder_step_seconds(batch: int, steps: int, precision: str, code_root: Path) -> float:
    """Median seconds per training step of the lite NSF-HiFi-GAN as the singing vocoder trains
    (recipes/pretrain/conf/vocoder.yaml: 32-frame crops, 30 % of them pitch-shifted), on one
    batch of noise: the step's cost does not depend on the values."""
    import torch
    import yaml

    from voiceconv.core.checkpoint import from_plain
    from voiceconv.models.vocoders.nsf import NSFConfig
    from voiceconv.vocoder.training import NSFHiFiGANTraining, VocoderDiscriminatorConfig

    conf = yaml.safe_load((code_root / "recipes" / "common" / "conf" /
                           "nsf_hifigan_lite.yaml").read_text())["model"]["init_args"]
    model = NSFHiFiGANTraining(
        from_plain(NSFConfig, conf["nsf"]), init_from_universal=False,
        discriminator=from_plain(VocoderDiscriminatorConfig, conf["discriminator"]))
    frames, rng = 32, torch.Generator().manual_seed(0)
    fixed = {"mel": torch.randn(batch, 80, frames, generator=rng) - 5,
             "f0": torch.full((batch, frames), 220.0),
             "audio": 0.1 * torch.randn(batch, frames * model.feature_config.hop_length,
                                        generator=rng),
             "shifted": torch.arange(batch) < round(0.3 * batch)}
    return lightning_step_seconds(model, fixed, steps, precision)


def lightning_step_seconds(model, fixed: dict, steps: int, precision: str, **datamodule_attrs
                           ) -> float:
    """Median seconds of `model`'s training step on the batch `fixed`, over `steps` steps after
    two of warm-up, in a Lightning Trainer without validation, logging or checkpoints."""
    import lightning as L
    import torch

    # Lightning sets its loggers' levels on import: quiet them after it.
    for logger in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(logger).setLevel(logging.ERROR)

    class OneBatch(L.LightningDataModule):
        val_set = None

        def train_dataloader(self):
            class Repeat(torch.utils.data.IterableDataset):
                def __iter__(self):
                    while True:
                        yield fixed

            return torch.utils.data.DataLoader(Repeat(), batch_size=None)

    for attr, value in datamodule_attrs.items():  # what the model reads from its data
        setattr(OneBatch, attr, value)

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_batch_start(self, *args) -> None:
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.strategy.root_device.type == "cuda":
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.start)

    timer = Timer()
    trainer = L.Trainer(max_steps=steps + 2, precision=precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[timer], accelerator="auto",
                        devices=1)
    trainer.fit(model, datamodule=OneBatch())
    # A finished Trainer and its model sit in reference cycles: without this, the paper
    # config's 6 GB per run piled up until the OOM killer stopped the benchmark.
    del trainer, model
    gc.collect()
    return statistics.median(timer.times[2:])  # the first steps warm up allocators and kernels


def reference_step_seconds(model_py: Path, batch: int, crop: int, steps: int,
                           bf16: bool) -> float:
    """Median seconds per training step of the reference implementation (paper size), in
    fp32 or under bf16 autocast."""
    import torch

    spec = importlib.util.spec_from_file_location("maskcyclegan_vc_reference", model_py)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    g_ab, g_ba = ref.Generator().to(device), ref.Generator().to(device)
    d_a, d_b, d2_a, d2_b = (ref.Discriminator().to(device) for _ in range(4))
    opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([p for d in (d_a, d_b, d2_a, d2_b) for p in d.parameters()], 1e-4,
                             betas=(0.5, 0.999))
    a, b = (torch.randn(batch, 80, crop, device=device) for _ in range(2))
    mask_a, mask_b = (torch.ones_like(a) for _ in range(2))
    mask_a[..., 10:30], mask_b[..., 20:40] = 0, 0
    ones = torch.ones_like(a)

    def mse_to(target, scores):
        return torch.mean((target - scores) ** 2)

    def step() -> None:
        # Its G update: all six generator passes, the four discriminators on them, one backward
        # (into the discriminators' weights too), then Adam on the generators.
        fake_b, fake_a = g_ab(a, mask_a), g_ba(b, mask_b)
        cycle_a, cycle_b = g_ba(fake_b, ones), g_ab(fake_a, ones)
        identity_a, identity_b = g_ba(a, ones), g_ab(b, ones)
        g_loss = (mse_to(1, d_b(fake_b)) + mse_to(1, d_a(fake_a)) + mse_to(1, d2_b(cycle_b))
                  + mse_to(1, d2_a(cycle_a))
                  + 10 * ((a - cycle_a).abs().mean() + (b - cycle_b).abs().mean())
                  + 5 * ((a - identity_a).abs().mean() + (b - identity_b).abs().mean()))
        opt_g.zero_grad()
        opt_d.zero_grad()
        g_loss.backward()
        opt_g.step()
        # Its D update: the generators run again, undetached, and the backward goes through
        # them as well.
        new_a, new_b = g_ba(b, mask_b), g_ab(a, mask_a)
        again_b, again_a = g_ab(new_a, ones), g_ba(new_b, ones)
        d_loss = ((mse_to(1, d_a(a)) + mse_to(0, d_a(new_a))) / 2
                  + (mse_to(1, d_b(b)) + mse_to(0, d_b(new_b))) / 2) / 2 + (
                 (mse_to(1, d2_a(a)) + mse_to(0, d2_a(again_a))) / 2
                 + (mse_to(1, d2_b(b)) + mse_to(0, d2_b(again_b))) / 2) / 2
        opt_g.zero_grad()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()

    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        with torch.autocast(device, torch.bfloat16, enabled=bf16):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def measure(args: argparse.Namespace, code_root: Path) -> list[dict]:
    """Rows of {config, variant, batch, seconds}, one run each, for the voiceconv code under
    `code_root`."""
    import torch

    variants = [("fp32", "32-true", False)]
    if args.bf16 == "yes":
        variants.append(("bf16", "bf16-mixed", False))
        if args.compile and torch.cuda.is_available():
            variants.append(("bf16 + compile", "bf16-mixed", True))
    rows = []
    for name in args.configs:
        batches = args.paper_batch_size if name == "paper" else [args.batch_size]
        steps = args.paper_steps if name == "paper" else args.steps
        for batch, (label, precision, compile_model) in itertools.product(batches, variants):
            seconds = vocoder_step_seconds(batch, steps, precision, code_root) \
                if name == "nsf-lite" else \
                voiceconv_step_seconds(name, args.prep, args.singers, batch, args.crop_frames,
                                       steps, precision, compile_model, code_root)
            rows.append({"config": name, "variant": label, "batch": batch, "seconds": seconds})
            # As each is measured (on stderr: a child's stdout is its JSON), so that a run
            # stopped at a time limit still says what it had.
            print(f"  measured: {name} {label} batch {batch}: {seconds:.4f} s/step",
                  file=sys.stderr, flush=True)
    return rows


def measure_in_child(tree: Path, args: argparse.Namespace) -> list[dict]:
    """measure() of the code in `tree`, in a child process that imports that code."""
    argv = [sys.executable, __file__, "--code-root", str(tree), "--json",
            *(["--prep", str(args.prep)] if args.prep else []), "--singers", *args.singers,
            "--configs", *args.configs, "--steps", str(args.steps),
            "--paper-steps", str(args.paper_steps), "--batch-size", str(args.batch_size),
            "--paper-batch-size", *map(str, args.paper_batch_size),
            "--crop-frames", str(args.crop_frames), "--bf16", args.bf16]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare-to", nargs="*", default=[], metavar="COMMIT")
    parser.add_argument("--prep", type=Path)
    parser.add_argument("--singers", nargs=2, default=["nit_f001", "pjs"])
    parser.add_argument("--configs", nargs="+", default=["small", "paper"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--paper-steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4, help="small: the demo's")
    parser.add_argument("--paper-batch-size", type=int, nargs="+", default=[1],
                        help="one row per size; the reference's is 1")
    parser.add_argument("--reference-batch-size", type=int, default=1, help="as it trains")
    parser.add_argument("--crop-frames", type=int, default=64)
    parser.add_argument("--bf16", choices=("auto", "yes", "no"), default="auto",
                        help="also time bf16 autocast (auto: on a GPU or a CPU with AMX or "
                             "AVX512-BF16)")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--reference", type=Path, default=REFERENCE,
                        help="the reference's model.py (default: ../shared's)")
    parser.add_argument("--code-root", type=Path, default=REPO, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code_root))  # whose voiceconv is timed
    warnings.filterwarnings("ignore")
    if args.json:
        print(json.dumps(measure(args, args.code_root)))
        return
    sys.path.insert(0, str(REPO))
    from benchmarks.common import bf16_hardware, machine, worktree

    if args.bf16 == "auto":
        args.bf16 = "yes" if bf16_hardware() else "no"
    with contextlib.ExitStack() as stack:
        if args.prep is None and set(args.configs) != {"nsf-lite"}:  # the vocoder needs none
            args.prep = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "prep"
            make_demo_prep(args.prep)
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                "voiceconv"], capture_output=True, text=True).stdout.strip()
        print(f"machine: {machine()}")
        print(f"crops of {args.crop_frames} frames x 80 mels (nsf-lite: 32 frames of audio); "
              f"batch = crops per singer (nsf-lite: crops); median "
              f"of {args.repeats} rounds (each code once per round) of the median step "
              f"(small: {args.steps} steps, paper: "
              f"{args.paper_steps}); reference: {args.reference}, "
              "MIT, benchmark only", flush=True)
        reference = ("paper" in args.configs and not args.no_reference
                     and args.reference.is_file())
        precisions = ("fp32", "bf16") if args.bf16 == "yes" else ("fp32",)
        reference_variants = precisions if reference else ()
        trees = {commit: stack.enter_context(worktree(commit)) for commit in args.compare_to}
        # Round by round, every code once per round: a machine whose speed drifts (a shared
        # host) slows all of them alike instead of whichever ran in the slow minutes.
        times: dict[tuple, list[float]] = {}
        for _ in range(args.repeats):
            # The reference first: it is what the paper rows are compared with, and a run
            # stopped at a time limit should have it.
            rows = []
            for variant in reference_variants:
                rows.append({"config": "paper", "variant": variant,
                             "code": "reference MaskCycleGAN-VC",
                             "batch": args.reference_batch_size,
                             "seconds": reference_step_seconds(
                                 args.reference, args.reference_batch_size,
                                 args.crop_frames, args.paper_steps, variant == "bf16")})
                print(f"  measured: reference {variant} batch {args.reference_batch_size}: "
                      f"{rows[-1]['seconds']:.4f} s/step", file=sys.stderr, flush=True)
            rows += [{**r, "code": f"voiceconv {head}{' + changes' if dirty else ''}"}
                     for r in measure(args, REPO)]
            for commit, tree in trees.items():
                rows += [{**r, "code": f"voiceconv {commit}"}
                         for r in measure_in_child(tree, args)]
            for r in rows:
                key = (r["config"], r["code"], r["variant"], r["batch"])
                times.setdefault(key, []).append(r["seconds"])
    print("\n| config | code | variant | batch | s/step (range) | steps/s | samples/s | vs first "
          "row of the config |\n|---|---|---|---|---|---|---|---|")
    for name in args.configs:
        config_rows = [(key, statistics.median(t), min(t), max(t))
                       for key, t in times.items() if key[0] == name]
        crops = 1 if name == "nsf-lite" else 2  # a CycleGAN step holds both singers' crops
        first = crops * config_rows[0][0][3] / config_rows[0][1]
        for (_, code, variant, batch), seconds, fastest, slowest in config_rows:
            samples = crops * batch / seconds
            print(f"| {name} | {code} | {variant} | {batch} | {seconds:.3f} ({fastest:.3f}–"
                  f"{slowest:.3f}) | {1 / seconds:.2f} | {samples:.2f} | {samples / first:.2f}x |")


def make_demo_prep(out: Path) -> None:
    """A prep output of 30 s per singer from the bundled demo songs (dio F0, for speed)."""
    import soundfile as sf

    from data_prep.config import PrepConfig
    from data_prep.pipeline import run_prep
    from voiceconv.core.feature_config import FeatureConfig

    corpus = out.parent / "corpus"
    audio = REPO / "recipes" / "demo" / "audio"
    for singer, names in (("nit_f001", ["nitech_jp_song070_f001_004.flac"]),
                          ("pjs", ["pjs001_song.flac", "pjs002_song.flac"])):
        (corpus / singer).mkdir(parents=True, exist_ok=True)
        for name in names:
            x, sr = sf.read(audio / singer / name, dtype="float32")
            sf.write(corpus / singer / name, x[: 30 * sr], sr)
    run_prep(corpus, out, PrepConfig(features=FeatureConfig(f0_method="dio")), progress=False)


if __name__ == "__main__":
    main()
