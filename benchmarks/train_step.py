"""Training throughput of the CycleGAN-VC configs: samples/s and frames/s of full training
steps (D update, then G update, every loss term), median of repeats.

"loader on": batches come from the real SingerPairData loader over a prep output (random
crops, normalisation); "loader off": one pre-made batch is reused, so the figure is the model
alone. On a GPU, bf16 autocast and channels-last are measured too (and torch.compile with
--compile).

Usage: python benchmarks/train_step.py [--prep DIR --singers A B] [--steps 10] [--repeats 3]
       [--configs small paper] [--batch-size 8] [--crop-frames 64] [--compile]
Without --prep, a prep output of the bundled demo excerpts is made in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine  # noqa: E402
from voiceconv.fit.cyclegan import (  # noqa: E402
    CycleGANVC,
    DiscriminatorConfig,
    LossWeights,
    OptimizerConfig,
)
from voiceconv.fit.data import SingerPairData  # noqa: E402
from voiceconv.models import GeneratorConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "recipes" / "common" / "conf"


def model_from_config(name: str) -> CycleGANVC:
    args = yaml.safe_load((CONF / f"cyclegan_{name}.yaml").read_text())["model"]["init_args"]
    return CycleGANVC(generator=GeneratorConfig(**args["generator"]),
                      discriminator=DiscriminatorConfig(**args["discriminator"]),
                      loss=LossWeights(**args["loss"]),
                      optimizer=OptimizerConfig(**args["optimizer"]),
                      max_masked_frames=args["max_masked_frames"])


class Timer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._start)


class FixedBatch(L.LightningDataModule):
    """The loader-off case: the same batch every step, already in memory."""

    def __init__(self, data: SingerPairData) -> None:
        super().__init__()
        data.setup("fit")
        self.data, self.feature_config = data, data.feature_config
        self.singer_stats, self.val_set = data.singer_stats, data.val_set
        self.batch = data.train_set.batch(0)

    def train_dataloader(self):
        batch = self.batch

        class Repeat(torch.utils.data.IterableDataset):
            def __iter__(self):
                while True:
                    yield batch

        return torch.utils.data.DataLoader(Repeat(), batch_size=None)


def time_steps(name: str, data: L.LightningDataModule, steps: int, precision: str,
               channels_last: bool, compile_model: bool) -> list[float]:
    model = model_from_config(name)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        for attr in ("g_ab", "g_ba"):
            setattr(model, attr, torch.compile(getattr(model, attr)))
    timer = Timer()
    trainer = L.Trainer(max_steps=steps + 2, precision=precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[timer], accelerator="auto",
                        devices=1)
    trainer.fit(model, datamodule=data)
    return timer.times[2:]  # the first steps warm up allocators and kernels


def main() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prep", type=Path)
    parser.add_argument("--singers", nargs=2, default=["nit_f001", "pjs"])
    parser.add_argument("--configs", nargs="+", default=["small", "paper"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop-frames", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="loader workers when 'on'")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else machine()
    with contextlib.ExitStack() as stack:
        prep = args.prep
        if prep is None:
            prep = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "prep"
            make_demo_prep(prep)
        variants = [("fp32", "32-true", False, False)]
        if cuda:
            variants += [("bf16", "bf16-mixed", False, False),
                         ("bf16 + channels-last", "bf16-mixed", True, False)]
            if args.compile:
                variants.append(("bf16 + compile", "bf16-mixed", False, True))
        print(f"device: {device}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
              f"batch {args.batch_size} x {args.crop_frames} frames per singer; median of "
              f"{args.repeats} x {args.steps} steps")
        print(f"{'config':8} {'variant':22} {'loader':7} {'s/step':>8} {'samples/s':>10} "
              f"{'frames/s':>10}")
        for name in args.configs:
            for label, precision, channels_last, compile_model in variants:
                for loader in ("on", "off"):
                    per_step = []
                    for _ in range(args.repeats):
                        data = SingerPairData(str(prep), *args.singers, args.crop_frames,
                                              args.batch_size, num_workers=args.workers
                                              if loader == "on" else 0, val_segments=1,
                                              neighbour_k=16)
                        if loader == "off":
                            data = FixedBatch(data)
                        per_step.append(statistics.median(time_steps(
                            name, data, args.steps, precision, channels_last, compile_model)))
                        # A finished Trainer and its model sit in reference cycles: without
                        # this, the paper config's 6 GB per run piled up until the OOM killer
                        # stopped the benchmark (23 GB machine).
                        del data
                        gc.collect()
                    step = statistics.median(per_step)
                    samples = 2 * args.batch_size / step  # a batch holds crops of A and of B
                    print(f"{name:8} {label:22} {loader:7} {step:8.3f} {samples:10.1f} "
                          f"{samples * args.crop_frames:10.0f}", flush=True)


def make_demo_prep(out: Path) -> None:
    """A prep output of 30 s per singer from the bundled demo songs (dio F0, for speed)."""
    import soundfile as sf

    from data_prep.config import PrepConfig
    from data_prep.pipeline import run_prep
    from voiceconv.core.features import FeatureConfig

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
