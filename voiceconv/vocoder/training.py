"""Training the NSF-HiFi-GAN vocoder with `voiceconv fit` (same checkpointing, exact resume,
SLURM and DDP plumbing as the CycleGAN).

Data: random crops of (log-mel, F0, audio) from any number of singers in a `voiceconv prep`
output; batch k is a function of (seed, rank, k) only. One training step updates the
discriminators (multi-period + multi-resolution, least squares) and then the generator
(adversarial + feature matching + mel L1).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import Dataset

from data_prep.features import load_features
from voiceconv.callbacks import StepClock
from voiceconv.data import CropData, IndexedBatches, prep_feature_config
from voiceconv.errors import VoiceconvError
from voiceconv.features import F0_FIELDS, PRESETS, FeatureConfig, LogMelSpectrogram
from voiceconv.fileio import read_jsonl
from voiceconv.melcep import frame_mcd
from voiceconv.resume import ExactResume
from voiceconv.vocoder.discriminators import (
    MultiDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from voiceconv.vocoder.nsf import NSF_V1, NSFConfig, NSFHiFiGANGenerator, config_dict


@dataclass(frozen=True)
class VocoderDiscriminatorConfig:
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    period_channels: int = 32
    resolution_channels: int = 32


@dataclass(frozen=True)
class VocoderLossWeights:
    mel: float = 45.0
    feature_matching: float = 2.0
    adversarial: float = 1.0


@dataclass(frozen=True)
class VocoderOptimizerConfig:
    lr: float = 2e-4
    beta1: float = 0.8
    beta2: float = 0.99
    lr_decay: float = 0.999  # learning rates are multiplied by this every `decay_every` steps
    decay_every: int = 1000


class SegmentAudio:
    """Every prepared segment's mel, F0 and audio, concatenated, with valid crop starts."""

    def __init__(self, prep_dir: Path, rows: list[dict[str, Any]], crop_frames: int,
                 hop: int) -> None:
        mels, f0s, audios, starts, offset = [], [], [], [], 0
        for row in rows:
            feats = load_features(prep_dir / row["features"])
            frames = feats["mel"].shape[1]
            if frames >= crop_frames:
                mels.append(feats["mel"])
                f0s.append(feats["f0"])
                audios.append(feats["audio"][: frames * hop])
                starts.append(offset + np.arange(frames - crop_frames + 1))
                offset += frames
        if not mels:
            raise VoiceconvError(f"no segment of at least {crop_frames} frames; lower "
                                 "data.crop_frames")
        self.mel = torch.from_numpy(np.concatenate(mels, axis=1))
        self.f0 = torch.from_numpy(np.concatenate(f0s))
        self.audio = torch.from_numpy(np.concatenate(audios))
        self.starts = torch.from_numpy(np.concatenate(starts))
        self.hop, self.crop_frames = hop, crop_frames


class AudioCrops(IndexedBatches):
    """Endless batches {"mel": (B, n_mels, N), "f0": (B, N), "audio": (B, N * hop)}."""

    def __init__(self, data: SegmentAudio, batch_size: int, seed: int) -> None:
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        d = self.data
        pick = d.starts[torch.randint(len(d.starts), (self.batch_size,),
                                      generator=self.batch_rng(index))]
        frames = pick[:, None] + torch.arange(d.crop_frames)
        samples = pick[:, None] * d.hop + torch.arange(d.crop_frames * d.hop)
        return {"mel": d.mel[:, frames].permute(1, 0, 2).contiguous(), "f0": d.f0[frames],
                "audio": d.audio[samples]}


class WholeSegments(Dataset):
    """Held-out segments {"mel": (n_mels, T), "f0": (T,)}, cut to `max_frames`."""

    def __init__(self, prep_dir: Path, rows: list[dict[str, Any]], max_frames: int) -> None:
        self.items = []
        for row in rows:
            feats = load_features(prep_dir / row["features"])
            n = min(feats["mel"].shape[1], max_frames)
            self.items.append({"mel": torch.from_numpy(feats["mel"][:, :n].copy()),
                               "f0": torch.from_numpy(feats["f0"][:n].copy())})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.items[index]


class VocoderData(CropData):
    """Crops of (mel, F0, audio) from a `voiceconv prep` output, for vocoder training.

    Args:
        prep_dir: a `voiceconv prep` output folder.
        singers: the singers to train on (default: all in the manifest).
        crop_frames: frames per crop (32 frames = 8192 samples at hop 256).
        val_segments: the last N segments (by id) of each singer are held out for validation.
        val_max_frames: validation segments are cut to this many frames.
        seed: batch k is a function of (seed, k, rank) only.
    """

    def __init__(self, prep_dir: str, singers: list[str] | None = None, crop_frames: int = 32,
                 batch_size: int = 8, num_workers: int = 0, val_segments: int = 2,
                 val_max_frames: int = 512, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.prep_dir = Path(prep_dir)

    @functools.cached_property
    def feature_config(self) -> FeatureConfig:
        return prep_feature_config(self.prep_dir)

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        hp, hop = self.hparams, self.feature_config.hop_length
        rows = sorted(read_jsonl(self.prep_dir / "manifest.jsonl"), key=lambda r: r["id"])
        singers = hp.singers or sorted({r["singer"] for r in rows})
        train, val = [], []
        for singer in singers:
            mine = [r for r in rows if r["singer"] == singer]
            if len(mine) <= hp.val_segments:
                raise VoiceconvError(f"singer {singer!r} has {len(mine)} segments in "
                                     f"{self.prep_dir}; cannot hold out {hp.val_segments}")
            train += mine[: len(mine) - hp.val_segments]
            val += mine[len(mine) - hp.val_segments:]
        self.train_set = AudioCrops(SegmentAudio(self.prep_dir, train, hp.crop_frames, hop),
                                    hp.batch_size, hp.seed)
        self.val_set = WholeSegments(self.prep_dir, val, hp.val_max_frames)


class NSFHiFiGANTraining(ExactResume, L.LightningModule):
    """NSF-HiFi-GAN generator + discriminators.

    Args:
        nsf: generator sizes (`NSF_V1`: fine-tuned from the universal HiFi-GAN; `NSF_SMALL`).
        init_from_universal: copy the universal HiFi-GAN V1 weights into every generator
            tensor of the same name and shape (the data's mel must be the universal one's).
        discriminator, loss, optimizer: sizes, loss weights, Adam and its exponential decay.
    """

    def __init__(self, nsf: NSFConfig = NSF_V1, init_from_universal: bool = True,
                 discriminator: VocoderDiscriminatorConfig = VocoderDiscriminatorConfig(),
                 loss: VocoderLossWeights = VocoderLossWeights(),
                 optimizer: VocoderOptimizerConfig = VocoderOptimizerConfig(),
                 seed: int = 0, feature_config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        for key, value in self.hparams.items():  # plain data only: weights_only loading
            if dataclasses.is_dataclass(value):
                self.hparams[key] = config_dict(value) if key == "nsf" else \
                    dataclasses.asdict(value)
        self.automatic_optimization = False
        self.loss_weights, self.optimizer_config = loss, optimizer
        torch.manual_seed(seed)
        # The source's sample rate is set from the data in setup.
        self.generator = NSFHiFiGANGenerator(nsf, PRESETS["hifigan-22k"].sample_rate)
        self.initialised_from = (self.generator.init_from_universal()
                                 if init_from_universal else None)
        self.discriminator = MultiDiscriminator(
            discriminator.periods, period_channels=discriminator.period_channels,
            resolution_channels=discriminator.resolution_channels)
        self.source_rng = torch.Generator().manual_seed(seed + 1)
        self.mel_transform: LogMelSpectrogram | None = None
        self.step_clock = StepClock()

    def setup(self, stage: str) -> None:
        data_config = self.data_feature_config()
        if data_config is None:
            return
        if self.hparams.init_from_universal:
            PRESETS["hifigan-22k"].require_same(data_config, "universal HiFi-GAN", "data",
                                                ignore=F0_FIELDS)
        if self.generator.source.hop != data_config.hop_length:
            raise VoiceconvError(f"the generator up-samples by {self.generator.source.hop} "
                                 f"(model.nsf.upsample_rates) but the data's hop is "
                                 f"{data_config.hop_length}")
        self.generator.source.sample_rate = data_config.sample_rate
        self.hparams.feature_config = data_config.to_dict()
        self.mel_transform = LogMelSpectrogram(data_config).to(self.device)
        if self.initialised_from is not None and self.trainer.global_step == 0:
            copied, total = self.initialised_from
            print(f"nsf-hifigan: {copied} of {total} universal HiFi-GAN tensors copied "
                  "into the generator")

    def own_rngs(self) -> dict[str, torch.Generator]:
        return {"source": self.source_rng}

    def configure_optimizers(self):
        cfg = self.optimizer_config
        betas = (cfg.beta1, cfg.beta2)
        opt_g = torch.optim.AdamW(self.generator.parameters(), cfg.lr, betas)
        opt_d = torch.optim.AdamW(self.discriminator.parameters(), cfg.lr, betas)
        decay = ExponentialStepDecay(cfg.lr_decay, cfg.decay_every)
        return ([opt_g, opt_d],
                [torch.optim.lr_scheduler.LambdaLR(opt, decay) for opt in (opt_g, opt_d)])

    def mel(self, audio: torch.Tensor) -> torch.Tensor:
        assert self.mel_transform is not None, "setup() has not run"
        return self.mel_transform(audio.float())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        w = self.loss_weights
        mel, f0, real = batch["mel"], batch["f0"], batch["audio"]
        phase0 = torch.rand(f0.shape[0], generator=self.source_rng).to(self.device)
        fake = self.generator(mel, f0, phase0, rng=self.source_rng)

        with self.toggled_optimizer(opt_d):
            real_logits, _ = self.discriminator(real)
            fake_logits, _ = self.discriminator(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            # Not through LightningOptimizer.step: global_step counts training steps (see
            # CycleGANVC.training_step).
            self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None,
                                                 model=self)

        with self.toggled_optimizer(opt_g):
            fake_logits, fake_features = self.discriminator(fake)
            with torch.no_grad():
                _, real_features = self.discriminator(real)
            g = {"g_adversarial": generator_adversarial_loss(fake_logits),
                 "g_feature_matching": feature_matching_loss(real_features, fake_features),
                 "g_mel_l1": torch.nn.functional.l1_loss(self.mel(fake), mel)}
            g_loss = (w.adversarial * g["g_adversarial"]
                      + w.feature_matching * g["g_feature_matching"] + w.mel * g["g_mel_l1"])
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
        sched_g.step()
        sched_d.step()

        logs = {"train/g_loss": g_loss, "train/d_loss": d_loss,
                **{f"train/{k}": v for k, v in g.items()},
                "lr/generator": opt_g.param_groups[0]["lr"]}
        seconds = self.step_clock.lap()
        if seconds:
            logs["throughput/audio_s_per_s"] = (real.numel() / self.feature_config.sample_rate
                                                / seconds)
        self.log_dict(logs)
        self.log_dict({"mel": g["g_mel_l1"], "d": d_loss}, prog_bar=True, logger=False)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        mel, f0 = batch["mel"][None], batch["f0"][None]
        fake = self.generator(mel, f0)  # the analysed mel is the reference
        fake_mel = self.mel(fake)
        self.log("val/mel_l1", torch.nn.functional.l1_loss(fake_mel, mel), prog_bar=True,
                 batch_size=1)
        self.log("val/mcd", frame_mcd(mel, fake_mel).mean(), batch_size=1)


class ExponentialStepDecay:
    """LambdaLR factor `rate ** (step / every)`; a class so its state is plain data."""

    def __init__(self, rate: float, every: int) -> None:
        self.rate, self.every = rate, max(every, 1)

    def __call__(self, step: int) -> float:
        return self.rate ** (step / self.every)
