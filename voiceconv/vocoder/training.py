"""Training the NSF-HiFi-GAN vocoder with `voiceconv fit` (same checkpointing, exact resume,
SLURM and DDP plumbing as the CycleGAN), on `voiceconv.vocoder.data.VocoderData`. One
training step updates the discriminators (multi-period + multi-resolution, least squares) and
then the generator (adversarial + feature matching + mel L1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch

from voiceconv.core.checkpoint import read_checkpoint
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import F0_FIELDS, PRESETS, FeatureConfig
from voiceconv.core.features import LogMelSpectrogram
from voiceconv.core.melcep import frame_mcd
from voiceconv.core.pretrained import resolve
from voiceconv.models.vocoders.f0_response import probe_f0_response
from voiceconv.models.vocoders.nsf import (
    NSF_V1,
    NSFConfig,
    NSFHiFiGAN,
    NSFHiFiGANGenerator,
)
from voiceconv.training.callbacks import StepClock
from voiceconv.training.resume import ExactResume, plain_hparams
from voiceconv.vocoder.discriminators import (
    MultiDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
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
        init_from: a trained vocoder checkpoint (`voiceconv fit`; or a shipped vocoder,
            `pretrained:<name>`, whose discriminator starts fresh) whose generator and
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
                 seed: int = 0, feature_config: FeatureConfig | None = None,
                 init_from: str | None = None) -> None:
        super().__init__()
        feature_config = feature_config or PRESETS["hifigan-22k"]
        if init_from_universal and not init_from:
            PRESETS["hifigan-22k"].require_same(feature_config, "universal HiFi-GAN", "data",
                                                ignore=F0_FIELDS)
        if math.prod(nsf.upsample_rates) != feature_config.hop_length:
            raise VoiceconvError(f"the generator up-samples by {math.prod(nsf.upsample_rates)} "
                                 f"(model.nsf.upsample_rates) but the data's hop is "
                                 f"{feature_config.hop_length}")
        self.save_hyperparameters()
        self.hparams.feature_config = feature_config
        plain_hparams(self.hparams)
        self.automatic_optimization = False
        self.loss_weights, self.optimizer_config = loss, optimizer
        self.feature_config = feature_config
        torch.manual_seed(seed)
        self.generator = NSFHiFiGANGenerator(nsf, feature_config.sample_rate)
        self.initialised_from = (self.generator.init_from_universal(injection_scale)
                                 if init_from_universal and not init_from else None)
        self.discriminator = MultiDiscriminator(
            discriminator.periods, period_channels=discriminator.period_channels,
            resolution_channels=discriminator.resolution_channels)
        self.source_rng = torch.Generator().manual_seed(seed + 1)
        self.mel_transform = LogMelSpectrogram(feature_config)
        self.step_clock = StepClock()

    def own_rngs(self) -> dict[str, torch.Generator]:
        return {"source": self.source_rng}

    def on_fit_start(self) -> None:
        # Here, not in __init__: only now is it known whether the run resumes (and so already
        # holds its own weights).
        if self.trainer.ckpt_path is not None:
            return
        path = self.hparams.init_from
        if path:
            state = trained_vocoder_weights(path, self.hparams, self.feature_config)
            parts = {name: {k.removeprefix(f"{name}."): v for k, v in state.items()
                            if k.startswith(f"{name}.")} for name in ("generator", "discriminator")}
            self.generator.load_state_dict(parts["generator"])
            if parts["discriminator"]:
                self.discriminator.load_state_dict(parts["discriminator"])
                print(f"nsf-hifigan: generator and discriminator loaded from {path}")
            else:  # a shipped vocoder (voiceconv.vocoder.export) has no discriminator
                print(f"nsf-hifigan: generator loaded from {path}; the discriminator starts "
                      "fresh")
        elif self.initialised_from is not None:
            copied, total = self.initialised_from
            print(f"nsf-hifigan: {copied} of {total} universal HiFi-GAN tensors copied "
                  "into the generator")

    def configure_optimizers(self):
        cfg = self.optimizer_config
        betas = (cfg.beta1, cfg.beta2)
        # fused: one vectorised pass; 7.5 instead of 36 ms a step for the lite's 15 M
        # parameters on a 2-core CPU.
        opt_g = torch.optim.AdamW(self.generator.parameters(), cfg.lr, betas, fused=True)
        opt_d = torch.optim.AdamW(self.discriminator.parameters(), cfg.lr, betas, fused=True)
        decay = ExponentialStepDecay(cfg.lr_decay, cfg.decay_every)
        return ([opt_g, opt_d],
                [torch.optim.lr_scheduler.LambdaLR(opt, decay) for opt in (opt_g, opt_d)])

    def mel(self, audio: torch.Tensor) -> torch.Tensor:
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
            # One call on [real, fake]: the same sums in fewer, larger convolutions (the lite's
            # step about 5 % faster on a 2-core CPU). Not in the generator's step: there the
            # real half would pay for an input gradient it does not need.
            logits, _ = self.discriminator(torch.cat([real, fake.detach()]))
            n = real.shape[0]
            d_loss = discriminator_loss([x[:n] for x in logits], [x[n:] for x in logits])
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
        # does, 0 while the filter still sings from the mel (`models.vocoders.f0_response`).
        if self.trainer.sanity_checking:
            return
        vocoder = NSFHiFiGAN(self.generator.cfg, self.feature_config)
        vocoder.generator.load_state_dict(self.generator.state_dict())
        self.log("val/f0_response_cents", probe_f0_response(vocoder.to(self.device).eval()))


def trained_vocoder_weights(path: str, hparams: dict[str, Any],
                            features: FeatureConfig) -> dict[str, torch.Tensor]:
    """The state dict of a trained vocoder checkpoint or shipped vocoder (`pretrained:<name>`;
    read weights_only), after checking that its generator and discriminator sizes (if it has
    one) are those in `hparams` and its features are `features`."""
    checkpoint = read_checkpoint(resolve(path), "vocoder")
    theirs = checkpoint["hyper_parameters"]
    parts = ("nsf", "discriminator") if any(
        k.startswith("discriminator.") for k in checkpoint["state_dict"]) else ("nsf",)
    differ = [f"{part}.{k}: init_from {theirs.get(part, {}).get(k)} vs model {v}"
              for part in parts for k, v in hparams[part].items()
              if _plain(theirs.get(part, {}).get(k)) != _plain(v)]
    if differ:
        raise VoiceconvError(f"init_from {path} has other sizes than this model ("
                             + "; ".join(differ) + ")")
    FeatureConfig.from_dict(theirs["feature_config"]).require_same(features, "init_from", "data")
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
