"""CycleGAN-VC (MaskCycleGAN-VC style) as a LightningModule with manual optimisation.

One training step (batch = unpaired crops of A and B, each normalised by its singer's stats):
  1. generators: B' = G_ab(A, mask), A'' = G_ba(B'); A' = G_ba(B, mask), B'' = G_ab(A')
  2. discriminator step: D_a, D_b (real vs converted) and, for the two-step adversarial loss,
     D2_a, D2_b (real vs cycle-reconstructed), least squares
  3. generator step against the updated discriminators: adversarial + two-step adversarial
     + cycle consistency + identity (identity weight dropped after `identity_until_step`)
     + optionally L1 to nearest-neighbour pseudo-targets (`voiceconv.core.neighbours`)
Every loss term is logged under train/.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from voiceconv.core.checkpoint import build_from_checkpoint
from voiceconv.core.errors import FeatureConfigMismatch, VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.melcep import MCD_CONSTANT, frame_mcd, mel_cepstrum
from voiceconv.fit import losses
from voiceconv.fit.transfer import TransferConfig, load_base
from voiceconv.models import Generator, GeneratorConfig, PatchDiscriminator, fif_mask
from voiceconv.models.generator import PAPER
from voiceconv.models.pair import PairConversion
from voiceconv.training.callbacks import StepClock
from voiceconv.training.resume import ExactResume, plain_hparams

# Training frames each checkpoint keeps per singer for matching: 3.9 minutes of singing, 6.4 MB,
# small beside the weights and optimizer state; the demo's and mbrola's singers fit whole.
MAX_BANK_FRAMES = 20_000


@dataclass(frozen=True)
class DiscriminatorConfig:
    channels: int = 128
    downsamples: int = 3
    # (frequency, time) kernel of the last gated block. Checkpoints saved before it was
    # configurable have (5, 5) there: give that to resume training one.
    last_kernel: tuple[int, int] = (1, 5)


@dataclass(frozen=True)
class LossWeights:
    adversarial: float = 1.0
    two_step_adversarial: float = 1.0  # 0 turns the second discriminators off
    cycle: float = 10.0
    identity: float = 5.0
    identity_until_step: int = 10_000  # as in CycleGAN-VC: identity helps only early on
    # L1 toward the mean of the target singer's nearest frames (needs data.neighbour_k > 0):
    # the frame-level signal the adversarial loss gives too slowly. 0: the papers' losses.
    neighbour: float = 0.0


@dataclass(frozen=True)
class OptimizerConfig:
    lr_generator: float = 2e-4
    lr_discriminator: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_after_step: int = 200_000  # constant learning rate until here ...
    decay_steps: int = 0  # ... then linear decay to zero over this many steps (0: until max_steps)


class LinearDecay:
    """LambdaLR factor: 1 until `after`, then linearly down to 0 over `steps` steps.

    A class rather than a closure so that its state is plain data in the checkpoint.
    """

    def __init__(self, after: int, steps: int) -> None:
        self.after, self.steps = after, max(steps, 1)

    def __call__(self, step: int) -> float:
        return max(0.0, 1.0 - max(0, step - self.after) / self.steps)


class CycleGANVC(PairConversion, ExactResume, L.LightningModule):
    """Two generators (A->B, B->A) and their discriminators for non-parallel singing conversion.

    Args:
        generator: generator sizes (`voiceconv.models.generator.SMALL` / `PAPER`).
        discriminator: PatchGAN sizes, shared by the four discriminators.
        loss: loss weights and the identity-loss schedule.
        optimizer: Adam settings and the linear learning-rate decay.
        max_masked_frames: FIF masking hides up to this many consecutive source frames.
        seed: seeds weights and the masking RNG (data has its own seed).
        init_from: a `voiceconv pretrain` base checkpoint: its encoder (and decoder, where
            the generator configs match) initialise both generators when training starts.
        transfer: the fine-tuning schedule (encoders frozen for K steps, then a fraction of
            the learning rate); only with `init_from`.
        feature_config, singer_stats, neighbour_k, spectral_envelope: the data's, linked from
            the data module by `voiceconv fit` (set once, in the data config) and kept in the
            checkpoint, so conversion needs nothing but the checkpoint. `neighbour_k` None:
            unknown (a model built without data), so `loss.neighbour` is not checked against
            it. `spectral_envelope`: the generators convert envelopes (`voiceconv.models.pair`).
    """

    def __init__(self, generator: GeneratorConfig = PAPER,
                 discriminator: DiscriminatorConfig = DiscriminatorConfig(),
                 loss: LossWeights = LossWeights(),
                 optimizer: OptimizerConfig = OptimizerConfig(),
                 max_masked_frames: int = 25, seed: int = 0, init_from: str | None = None,
                 transfer: TransferConfig = TransferConfig(),  # noqa: B008 - frozen
                 feature_config: FeatureConfig | None = None,
                 singer_stats: dict[str, Any] | None = None,
                 neighbour_k: int | None = None, spectral_envelope: bool = False) -> None:
        super().__init__()
        if feature_config is not None and feature_config.n_mels != generator.n_mels:
            raise FeatureConfigMismatch(f"feature config mismatch (n_mels: model "
                                        f"{generator.n_mels} vs data {feature_config.n_mels})")
        if loss.neighbour > 0 and neighbour_k == 0:
            raise VoiceconvError("model loss.neighbour > 0 needs nearest-neighbour targets: "
                                 "set data.neighbour_k (e.g. 16)")
        self.save_hyperparameters()
        plain_hparams(self.hparams)
        self.automatic_optimization = False
        self.generator_config, self.loss_weights = generator, loss
        self.optimizer_config, self.transfer = optimizer, transfer
        self.feature_config, self.singer_stats = feature_config, singer_stats
        self.spectral_envelope = spectral_envelope
        torch.manual_seed(seed)
        self.g_ab, self.g_ba = Generator(generator), Generator(generator)
        self.d_a, self.d_b = (PatchDiscriminator(**dataclasses.asdict(discriminator))
                              for _ in range(2))
        self.d2_a, self.d2_b = (PatchDiscriminator(**dataclasses.asdict(discriminator))
                                for _ in range(2))
        self.mask_rng = torch.Generator().manual_seed(seed + 1)
        self.step_clock = StepClock()

    # -- checkpoints ----------------------------------------------------------------------------

    def own_rngs(self) -> dict[str, torch.Generator]:
        return {"mask": self.mask_rng}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        last = f"d_a.net.{len(self.d_a.net) - 2}.conv.weight"
        saved = checkpoint.get("state_dict", {}).get(last)
        if saved is not None and saved.shape != self.d_a.net[-2].conv.weight.shape:
            raise VoiceconvError(
                f"the checkpoint's discriminators end in a {tuple(saved.shape[2:])} block, this "
                f"model's in {tuple(self.d_a.net[-2].conv.weight.shape[2:])}: resume it with "
                f"--model.init_args.discriminator.last_kernel '{list(saved.shape[2:])}'")
        super().on_load_checkpoint(checkpoint)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.frame_banks is not None:
            checkpoint["frame_banks"] = self.frame_banks

    def on_fit_start(self) -> None:
        self.frame_banks = training_frame_banks(self.trainer.datamodule)
        # Here rather than in setup: only now does the trainer know whether it resumes from a
        # checkpoint (whose weights, restored already, must stay).
        path = self.hparams.init_from
        if not path or self.trainer.ckpt_path is not None:
            return
        base = load_base(path, self.generator_config, self.feature_config,
                         self.spectral_envelope)
        for g in (self.g_ab, self.g_ba):
            g.encoder.load_state_dict(base.encoder)
            if base.decoder is not None:
                g.decoder.load_state_dict(base.decoder)
        rank_zero_info(f"init_from {path}: {base.note}")

    @property
    def encoders(self) -> list[nn.Parameter]:
        return [*self.g_ab.encoder.parameters(), *self.g_ba.encoder.parameters()]

    def freeze_encoders(self, step: int) -> bool:
        """Freeze the encoders before `transfer.freeze_encoder_steps`, unfreeze them after; a
        frozen parameter gets no gradient, so Adam neither moves it nor keeps state for it.
        A function of the step alone, so a resumed run is in the right phase."""
        frozen = bool(self.hparams.init_from) and step < self.transfer.freeze_encoder_steps
        for p in self.encoders:
            p.requires_grad_(not frozen)
        return frozen

    # -- optimisation ---------------------------------------------------------------------------

    def configure_optimizers(self):
        cfg = self.optimizer_config
        betas = (cfg.beta1, cfg.beta2)
        encoders = set(self.encoders)
        rest = [p for g in (self.g_ab, self.g_ba) for p in g.parameters() if p not in encoders]
        discriminators = [p for d in self.discriminators for p in d.parameters()]
        # Two groups: the decoders (and all of a generator trained from scratch) at the base
        # rate, the encoders at their own (discriminative learning rates for transfer).
        scale = self.transfer.encoder_lr_scale if self.hparams.init_from else 1.0
        # fused: one vectorised pass over all parameters, about 8x faster than the default
        # loop on a CPU, which at the paper size spent most of a second per step in Adam.
        opt_g = torch.optim.Adam([{"params": rest}, {"params": self.encoders,
                                                      "lr": cfg.lr_generator * scale}],
                                 lr=cfg.lr_generator, betas=betas, fused=True)
        opt_d = torch.optim.Adam(discriminators, lr=cfg.lr_discriminator, betas=betas,
                                 fused=True)
        total = self.trainer.max_steps if self._trainer and self.trainer.max_steps > 0 else 0
        steps = cfg.decay_steps or max(total - cfg.decay_after_step, 1)
        return ([opt_g, opt_d],
                [torch.optim.lr_scheduler.LambdaLR(opt, LinearDecay(cfg.decay_after_step, steps))
                 for opt in (opt_g, opt_d)])

    @property
    def discriminators(self) -> list[nn.Module]:
        two_step = self.loss_weights.two_step_adversarial > 0
        return [self.d_a, self.d_b, *((self.d2_a, self.d2_b) if two_step else ())]

    def identity_weight(self, step: int) -> float:
        w = self.loss_weights
        return w.identity if step < w.identity_until_step else 0.0

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        real_a, real_b = batch["a"], batch["b"]
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        w = self.loss_weights
        n, frames = real_a.shape[0], real_a.shape[-1]
        frozen = self.freeze_encoders(self.global_step)
        mask_a = fif_mask(n, frames, self.hparams.max_masked_frames, self.mask_rng, self.device)
        mask_b = fif_mask(n, frames, self.hparams.max_masked_frames, self.mask_rng, self.device)

        # Each network runs once per pass on every input that does not wait for another's
        # output: instance norm is per item, so a stacked batch gives each input what it
        # would get alone, and one call of a larger batch costs less than several small ones.
        identity_weight = self.identity_weight(self.global_step)
        identity = identity_weight > 0
        ones = torch.ones_like(mask_a)
        fake_b, *identity_b = _stacked(self.g_ab, (real_a, mask_a), *[(real_b, ones)] * identity)
        cycle_a, fake_a, *identity_a = _stacked(self.g_ba, (fake_b, ones), (real_b, mask_b),
                                                *[(real_a, ones)] * identity)
        cycle_b = self.g_ab(fake_a, ones)

        # Discriminators first, on detached generator outputs.
        with self.toggled_optimizer(opt_d):
            pairs = {"d_a": (self.d_a, real_a, fake_a), "d_b": (self.d_b, real_b, fake_b)}
            if w.two_step_adversarial > 0:
                pairs.update(d2_a=(self.d2_a, real_a, cycle_a), d2_b=(self.d2_b, real_b, cycle_b))
            d = {name: losses.lsgan_discriminator(*_stacked(net, (real,), (fake.detach(),)))
                 for name, (net, real, fake) in pairs.items()}
            d_loss = sum(parts["total"] for parts in d.values())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            d_grad_norm = _grad_norm(opt_d)
            # Through the strategy (precision, DDP) but not LightningOptimizer.step, which
            # would count a second optimizer step per batch: so trainer.global_step, max_steps
            # and every_n_train_steps count training steps, not twice their number.
            self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None,
                                                 model=self)

        # Then the generators, against the updated discriminators.
        with self.toggled_optimizer(opt_g):
            g = {"g_adversarial": losses.lsgan_generator(self.d_b(fake_b))
                 + losses.lsgan_generator(self.d_a(fake_a)),
                 "g_cycle": losses.cycle_consistency(real_a, cycle_a)
                 + losses.cycle_consistency(real_b, cycle_b)}
            if w.two_step_adversarial > 0:
                g["g_two_step_adversarial"] = (losses.lsgan_generator(self.d2_a(cycle_a))
                                               + losses.lsgan_generator(self.d2_b(cycle_b)))
            if identity:
                g["g_identity"] = (losses.identity_mapping(real_b, identity_b[0])
                                   + losses.identity_mapping(real_a, identity_a[0]))
            if w.neighbour > 0:
                g["g_neighbour"] = (losses.neighbour_target(fake_b, batch["nn_b"])
                                    + losses.neighbour_target(fake_a, batch["nn_a"]))
            weights = {"g_adversarial": w.adversarial, "g_cycle": w.cycle,
                       "g_two_step_adversarial": w.two_step_adversarial,
                       "g_identity": identity_weight, "g_neighbour": w.neighbour}
            g_loss = sum(weights[k] * v for k, v in g.items())
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            g_grad_norm = _grad_norm(opt_g)
            opt_g.step()
        sched_g.step()
        sched_d.step()

        logs = {"train/g_loss": g_loss, "train/d_loss": d_loss,
                **{f"train/{k}": v for k, v in g.items()},
                **{f"train/{k}_{part}": v for k, parts in d.items()
                   for part, v in parts.items() if part != "total"},
                "train/identity_weight": identity_weight,
                "grad_norm/generators": g_grad_norm, "grad_norm/discriminators": d_grad_norm,
                "lr/generators": opt_g.param_groups[0]["lr"],
                "lr/encoders": opt_g.param_groups[1]["lr"],
                "train/encoders_frozen": float(frozen),
                "lr/discriminators": opt_d.param_groups[0]["lr"]}
        seconds = self.step_clock.lap()
        if seconds:
            logs["throughput/samples_per_s"] = 2 * n / seconds
            logs["throughput/frames_per_s"] = 2 * n * frames / seconds
        self.log_dict(logs, prog_bar=False)
        self.log_dict({"g": g_loss, "d": d_loss}, prog_bar=True, logger=False)

    def preview_mels(self, val_set) -> dict[str, torch.Tensor]:
        """Log-mels of the first validation pair converted A->B, back, and B->A."""
        pair = val_set[0]
        a, b = pair["a"][None].to(self.device), pair["b"][None].to(self.device)
        fake_b = self.g_ab(a)
        return {"A": self.denormalise(a, "a"), "A to B": self.denormalise(fake_b, "b"),
                "A to B to A": self.denormalise(self.g_ba(fake_b), "a"),
                "B": self.denormalise(b, "b"), "B to A": self.denormalise(self.g_ba(b), "a")}

    # -- validation -----------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._val: dict[str, list[torch.Tensor]] = {}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        a, b = batch["a"][None], batch["b"][None]
        fake_b = self.g_ab(a)
        cycle_a = self.g_ba(fake_b)
        log_a, log_b = self.denormalise(a, "a"), self.denormalise(b, "b")
        log_fake_b = self.denormalise(fake_b, "b")
        val = self._val
        val.setdefault("mcd_cycle_a", []).append(
            frame_mcd(log_a, self.denormalise(cycle_a, "a")).flatten())
        # Timbre proxy without parallel data: average cepstra of converted A and of real B.
        val.setdefault("cep_fake_b", []).append(mel_cepstrum(log_fake_b).mean(-1))
        val.setdefault("cep_real_b", []).append(mel_cepstrum(log_b).mean(-1))
        val.setdefault("cep_real_a", []).append(mel_cepstrum(log_a).mean(-1))
        if self.trainer.datamodule.val_set.parallel:
            val.setdefault("mcd_parallel", []).append(frame_mcd(log_fake_b, log_b).flatten())
            val.setdefault("mcd_parallel_source", []).append(frame_mcd(log_a, log_b).flatten())

    def on_validation_epoch_end(self) -> None:
        val = self._val
        cep = {k: torch.cat(val[k]).mean(0) for k in ("cep_fake_b", "cep_real_b", "cep_real_a")}
        logs = {
            "val/mcd_cycle_a": torch.cat(val["mcd_cycle_a"]).mean(),
            "val/mcd_mean_envelope": _envelope_mcd(cep["cep_fake_b"], cep["cep_real_b"]),
            "val/mcd_mean_envelope_source": _envelope_mcd(cep["cep_real_a"], cep["cep_real_b"]),
        }
        if "mcd_parallel" in val:
            logs["val/mcd_parallel"] = torch.cat(val["mcd_parallel"]).mean()
            logs["val/mcd_parallel_source"] = torch.cat(val["mcd_parallel_source"]).mean()
        self.log_dict(logs, prog_bar=True, sync_dist=True)


def training_frame_banks(data: Any) -> dict[str, torch.Tensor] | None:
    """Each singer's normalised training frames, for conversions matched to the target's own
    frames (`match_k`); at most MAX_BANK_FRAMES each, evenly spaced through the songs."""
    train_set = getattr(data, "train_set", None)
    if train_set is None:
        return None
    banks = {}
    for singer in ("a", "b"):
        frames = train_set.mels[singer]
        if frames.shape[1] > MAX_BANK_FRAMES:
            frames = frames[:, torch.linspace(0, frames.shape[1] - 1, MAX_BANK_FRAMES).long()]
        banks[singer] = frames
    return banks


def _stacked(net: nn.Module, *inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """[net(*args) for args in inputs] in one call of `net` on the inputs stacked along the
    batch (all of one batch size)."""
    outputs = net(*(torch.cat(parts) for parts in zip(*inputs, strict=True)))
    return list(outputs.chunk(len(inputs)))


def _envelope_mcd(c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    return MCD_CONSTANT * (c1 - c2).pow(2).sum().sqrt()


def _grad_norm(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    grads = [p.grad for group in optimizer.param_groups for p in group["params"]
             if p.grad is not None]
    if not grads:
        return torch.tensor(math.nan)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def load_model(path: str, map_location: str | torch.device = "cpu") -> CycleGANVC:
    """A fitted CycleGANVC (all four discriminators too) from a checkpoint, without unpickling
    code. For conversion alone, `voiceconv.models.pair.SingerPair.from_checkpoint` is lighter."""
    return build_from_checkpoint(CycleGANVC, path, "cyclegan", map_location)
