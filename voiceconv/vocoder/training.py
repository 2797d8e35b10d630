"""Training the NSF-HiFi-GAN vocoder with `voiceconv fit` (same checkpointing, exact resume,
SLURM and DDP plumbing as the CycleGAN).

Data: random crops of (log-mel, F0, audio) from any number of singers in a `voiceconv prep`
output; batch k is a function of (seed, rank, k) only. Optionally a share of the crops is
pitch-shifted in F0 and target audio but not in the mel given (see `VocoderData`). One
training step updates the discriminators (multi-period + multi-resolution, least squares) and
then the generator (adversarial + feature matching + mel L1).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pyworld
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
from voiceconv.vocoder.f0_response import probe_f0_response
from voiceconv.vocoder.nsf import (
    NSF_V1,
    NSFConfig,
    NSFHiFiGAN,
    NSFHiFiGANGenerator,
    config_dict,
    nsf_config,
    read_vocoder_checkpoint,
)


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
    """Every prepared segment's mel, F0 and audio, concatenated, with valid crop starts; with
    `world_analysis`, also each frame's WORLD spectral envelope and aperiodicity (from the
    segment's own audio and F0), for re-synthesising crops at another pitch."""

    def __init__(self, prep_dir: Path, rows: list[dict[str, Any]], crop_frames: int,
                 hop: int, sample_rate: int, world_analysis: bool = False) -> None:
        mels, f0s, audios, envelopes, aperiodicities, starts, offset = [], [], [], [], [], [], 0
        for row in rows:
            feats = load_features(prep_dir / row["features"])
            frames = feats["mel"].shape[1]
            if frames >= crop_frames:
                mels.append(feats["mel"])
                f0s.append(feats["f0"])
                audios.append(feats["audio"][: frames * hop])
                starts.append(offset + np.arange(frames - crop_frames + 1))
                offset += frames
                if world_analysis:
                    sp, ap = world_analyse(audios[-1], f0s[-1], hop, sample_rate)
                    envelopes.append(sp)
                    aperiodicities.append(ap)
        if not mels:
            raise VoiceconvError(f"no segment of at least {crop_frames} frames; lower "
                                 "data.crop_frames")
        self.mel = torch.from_numpy(np.concatenate(mels, axis=1))
        self.f0 = torch.from_numpy(np.concatenate(f0s))
        self.audio = torch.from_numpy(np.concatenate(audios))
        self.starts = torch.from_numpy(np.concatenate(starts))
        self.hop, self.crop_frames, self.sample_rate = hop, crop_frames, sample_rate
        self.envelope = np.concatenate(envelopes) if envelopes else None  # (frames, bins)
        self.aperiodicity = np.concatenate(aperiodicities) if aperiodicities else None

    def resynthesise(self, start: int, factor: float, context: int = 4) -> np.ndarray:
        """Crop [start, start + crop_frames) re-synthesised by WORLD with its F0 times
        `factor` and its own envelope and aperiodicity: only the pitch changes. A few frames
        of context on each side keep WORLD's start-up out of the crop."""
        hop, frames = self.hop, self.crop_frames
        lo, hi = max(0, start - context), min(len(self.f0), start + frames + context)
        y = pyworld.synthesize(self.f0[lo:hi].double().numpy() * factor,
                               self.envelope[lo:hi].astype(np.float64),
                               self.aperiodicity[lo:hi].astype(np.float64),
                               self.sample_rate, 1000 * hop / self.sample_rate)
        # WORLD frame k is at sample k * hop; ours are centred on (k + 1/2) * hop.
        y = np.concatenate([np.zeros(hop // 2), y])
        first = (start - lo) * hop
        y = np.pad(y, (0, max(0, first + frames * hop - len(y))))
        return y[first: first + frames * hop].astype(np.float32)


def world_analyse(audio: np.ndarray, f0: np.ndarray, hop: int,
                  sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """WORLD envelope and aperiodicity (float32, (frames, bins)) at our frame centres, with
    the prep's F0 (the one the vocoder is given)."""
    x, f0 = audio.astype(np.float64), f0.astype(np.float64)
    t = (np.arange(len(f0)) + 0.5) * hop / sample_rate
    sp = pyworld.cheaptrick(x, f0, t, sample_rate)
    ap = pyworld.d4c(x, f0, t, sample_rate)
    return sp.astype(np.float32), ap.astype(np.float32)


class AudioCrops(IndexedBatches):
    """Endless batches {"mel": (B, n_mels, N), "f0": (B, N), "audio": (B, N * hop),
    "shifted": (B,) bool}: with `shift_prob`, that share of the crops has its F0 and audio
    (WORLD re-synthesis) moved by up to ±`shift_semitones`; their mel stays the original's."""

    def __init__(self, data: SegmentAudio, batch_size: int, seed: int,
                 shift_prob: float = 0.0, shift_semitones: float = 0.0) -> None:
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.shift_prob, self.shift_semitones = shift_prob, shift_semitones

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        d, rng = self.data, self.batch_rng(index)
        pick = d.starts[torch.randint(len(d.starts), (self.batch_size,), generator=rng)]
        frames = pick[:, None] + torch.arange(d.crop_frames)
        samples = pick[:, None] * d.hop + torch.arange(d.crop_frames * d.hop)
        batch = {"mel": d.mel[:, frames].permute(1, 0, 2).contiguous(), "f0": d.f0[frames],
                 "audio": d.audio[samples], "shifted": torch.zeros(self.batch_size, dtype=bool)}
        if self.shift_prob > 0:
            shifted = torch.rand(self.batch_size, generator=rng) < self.shift_prob
            semitones = (2 * torch.rand(self.batch_size, generator=rng) - 1) * \
                self.shift_semitones
            for i in torch.nonzero(shifted).flatten().tolist():
                factor = 2 ** (float(semitones[i]) / 12)
                batch["f0"][i] *= factor
                batch["audio"][i] = torch.from_numpy(d.resynthesise(int(pick[i]), factor))
            batch["shifted"] = shifted
        return batch


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
        pitch_shift_prob: share of training crops whose F0 and target audio are moved by a
            random pitch shift (WORLD re-synthesis from the crop's own envelope and
            aperiodicity) while the mel given stays the original's. The mel's harmonics then
            disagree with the F0, so the generator must take its pitch from the F0: what a key
            shift at conversion needs. 0 (default): plain crops.
        pitch_shift_semitones: the shift is uniform in ±this many semitones.
        seed: batch k is a function of (seed, k, rank) only.
    """

    def __init__(self, prep_dir: str, singers: list[str] | None = None, crop_frames: int = 32,
                 batch_size: int = 8, num_workers: int = 0, val_segments: int = 2,
                 val_max_frames: int = 512, pitch_shift_prob: float = 0.0,
                 pitch_shift_semitones: float = 6.0, seed: int = 0) -> None:
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
        crops = SegmentAudio(self.prep_dir, train, hp.crop_frames, hop,
                             self.feature_config.sample_rate,
                             world_analysis=hp.pitch_shift_prob > 0)
        self.train_set = AudioCrops(crops, hp.batch_size, hp.seed, hp.pitch_shift_prob,
                                    hp.pitch_shift_semitones)
        self.val_set = WholeSegments(self.prep_dir, val, hp.val_max_frames)


class NSFHiFiGANTraining(ExactResume, L.LightningModule):
    """NSF-HiFi-GAN generator + discriminators.

    Args:
        nsf: generator sizes (`NSF_V1`: fine-tuned from the universal HiFi-GAN; `NSF_LITE`:
            its kernel-3 stacks only, likewise initialised; `NSF_SMALL`: from scratch).
        init_from_universal: copy the universal HiFi-GAN V1 weights into every generator
            tensor of the same name and shape (the data's mel must be the universal one's).
        injection_scale: with `init_from_universal`, the source injections start at this
            multiple of PyTorch's default initialisation: 0 renders exactly as the universal
            HiFi-GAN (whose pitch comes from the mel); 1 starts with the source swamping it.
        discriminator, loss, optimizer: sizes, loss weights, Adam and its exponential decay.
        init_from: a trained vocoder checkpoint (`voiceconv fit`) whose generator and
            discriminator start this run instead of the universal weights: to fine-tune it on
            another singer's data, or to go on at another learning rate. Its `nsf` and
            `discriminator` sizes and its features must match this run's (each differing
            field is named); its step count and optimizer state are not carried over.
    """

    def __init__(self, nsf: NSFConfig = NSF_V1, init_from_universal: bool = True,
                 injection_scale: float = 0.0,
                 discriminator: VocoderDiscriminatorConfig = VocoderDiscriminatorConfig(),
                 loss: VocoderLossWeights = VocoderLossWeights(),
                 optimizer: VocoderOptimizerConfig = VocoderOptimizerConfig(),
                 seed: int = 0, feature_config: dict[str, Any] | None = None,
                 init_from: str | None = None) -> None:
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
        self.initialised_from = (self.generator.init_from_universal(injection_scale)
                                 if init_from_universal and not init_from else None)
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
        if self.hparams.init_from_universal and not self.hparams.init_from:
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

    def on_fit_start(self) -> None:
        # Here, not in setup: only now is it known whether the run resumes (and so already
        # holds its own weights).
        path = self.hparams.init_from
        if path and self.trainer.ckpt_path is None:
            self.load_state_dict(trained_vocoder_weights(path, self.hparams))
            print(f"nsf-hifigan: generator and discriminator loaded from {path}")

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
        # The mel loss's target: the analysed mel, or for pitch-shifted crops (whose audio
        # no longer matches the mel given) the mel of their shifted audio.
        target_mel = torch.where(batch["shifted"][:, None, None], self.mel(real), mel) \
            if batch["shifted"].any() else mel
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
                 "g_mel_l1": torch.nn.functional.l1_loss(self.mel(fake), target_mel)}
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

    def on_validation_epoch_end(self) -> None:
        # Whether the pitch follows the F0 input yet (what `convert --key` needs): 200 when it
        # does, 0 while the filter still sings from the mel (see voiceconv.vocoder.f0_response).
        if self.trainer.sanity_checking:
            return
        vocoder = NSFHiFiGAN(nsf_config(self.hparams.nsf), self.feature_config)
        vocoder.generator.load_state_dict(self.generator.state_dict())
        self.log("val/f0_response_cents", probe_f0_response(vocoder.to(self.device).eval()))


def trained_vocoder_weights(path: str, hparams: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The state dict of a trained vocoder checkpoint (read weights_only), after checking
    that its generator and discriminator sizes and its features are those in `hparams`."""
    checkpoint = read_vocoder_checkpoint(path)
    theirs = checkpoint["hyper_parameters"]
    differ = [f"{part}.{k}: init_from {theirs.get(part, {}).get(k)} vs model {v}"
              for part in ("nsf", "discriminator") for k, v in hparams[part].items()
              if _plain(theirs.get(part, {}).get(k)) != _plain(v)]
    if differ:
        raise VoiceconvError(f"init_from {path} has other sizes than this model ("
                             + "; ".join(differ) + ")")
    if hparams.get("feature_config") is not None:
        FeatureConfig.from_dict(theirs["feature_config"]).require_same(
            FeatureConfig.from_dict(hparams["feature_config"]), "init_from", "data")
    return checkpoint["state_dict"]


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively: checkpoint and config spell the same sizes both ways."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class ExponentialStepDecay:
    """LambdaLR factor `rate ** (step / every)`; a class so its state is plain data."""

    def __init__(self, rate: float, every: int) -> None:
        self.rate, self.every = rate, max(every, 1)

    def __call__(self, step: int) -> float:
        return self.rate ** (step / self.every)
