"""Encoder pretraining (`voiceconv pretrain`): train the generator's encoder on a pool of many
singers by masked spectrogram reconstruction, the filling-in-frames task of MaskCycleGAN-VC
made harder: hide several random spans of frames of a normalised mel crop and reconstruct the
whole crop. To fill a gap the encoder has to model how sung phones and notes continue, for any
singer; that is what a pair's CycleGAN then starts from (`voiceconv fit
--model.init_args.init_from BASE.ckpt`).

The network is the CycleGAN generator itself (same `GeneratorConfig`): its decoder is the
"light decoder" of the task, and the base checkpoint's encoder, and decoder where the shapes
allow, load straight into both generators of a pair. Same logging, checkpointing, exact resume,
SLURM and DDP as `voiceconv fit`, whose machinery this command is:

    voiceconv pretrain --config recipes/common/conf/pretrain_small.yaml \
        --config recipes/pretrain/conf/pretrain.yaml [--ckpt_path last] [--trainer.max_steps N]

Filling gaps alone keeps the singer in the encoding. With `singer_adversarial` > 0 the task
is made content-oriented, as in AutoVC-style and domain-adversarial training: a classifier
learns to tell the singer from each frame of the encoding while the encoder, through a
gradient reversal, learns to defeat it, and the decoder is told the singer (a learnt
embedding added to the encoding), so the encoding need not carry it to reconstruct. The
classifier and the embedding are pretraining-only parts; only the encoder goes to a pair.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from voiceconv.core.checkpoint import build_from_checkpoint
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.pretrained import resolve
from voiceconv.models import Generator, GeneratorConfig, fif_mask
from voiceconv.models.generator import SMALL
from voiceconv.training.callbacks import StepClock
from voiceconv.training.resume import ExactResume, plain_hparams


class EncoderPretraining(ExactResume, L.LightningModule):
    """Masked reconstruction of mel crops with a CycleGAN generator.

    Args:
        generator: the generator's sizes; a pair fine-tuned from this base must use the same.
        max_masked_frames, mask_spans: each crop hides `mask_spans` random spans of up to
            `max_masked_frames` frames (they may overlap).
        masked_weight: the loss is L1 over all frames plus this weight times L1 over the
            hidden frames (the part only context can tell).
        lr, betas: Adam.
        singer_adversarial: weight of the reversed singer-classification loss on the encoding
            (0: plain masked reconstruction); needs pool data (`SingerPoolData`).
        seed: seeds the weights and the masking RNG (data has its own seed).
        feature_config, n_singers, spectral_envelope: the data's, linked from the data module
            by `voiceconv pretrain` and kept in the checkpoint; a pair must match the features
            and whether they are envelopes.
    """

    def __init__(self, generator: GeneratorConfig = SMALL, max_masked_frames: int = 16,
                 mask_spans: int = 3, masked_weight: float = 1.0, lr: float = 5e-4,
                 beta1: float = 0.9, beta2: float = 0.999, singer_adversarial: float = 0.0,
                 seed: int = 0, feature_config: FeatureConfig | None = None,
                 n_singers: int | None = None, spectral_envelope: bool = False) -> None:
        super().__init__()
        if singer_adversarial > 0 and not n_singers:
            raise VoiceconvError("model singer_adversarial > 0 needs singer-labelled pool "
                                 "data (voiceconv.pretrain.pool.SingerPoolData)")
        self.save_hyperparameters()
        plain_hparams(self.hparams)
        self.feature_config = feature_config
        torch.manual_seed(seed)
        self.generator = Generator(generator)
        self.singer_parts: SingerParts | None = None
        if singer_adversarial > 0:
            self.singer_parts = SingerParts(generator.residual_channels, n_singers,
                                            singer_adversarial)
        self.mask_rng = torch.Generator().manual_seed(seed + 1)
        self.step_clock = StepClock()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("hyper_parameters", {}).get("n_singers")
        if self.singer_parts is not None and saved != self.hparams.n_singers:
            raise VoiceconvError(f"the model was built for {saved} singers, the data has "
                                 f"{self.hparams.n_singers}")
        super().on_load_checkpoint(checkpoint)

    def own_rngs(self) -> dict[str, torch.Generator]:
        return {"mask": self.mask_rng}

    def configure_optimizers(self):
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=hp.lr, betas=(hp.beta1, hp.beta2))

    def mask(self, mel: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        hp = self.hparams
        return fif_mask(mel.shape[0], mel.shape[-1], hp.max_masked_frames, rng, mel.device,
                        spans=hp.mask_spans)

    def reconstruction_losses(self, mel: torch.Tensor, mask: torch.Tensor,
                              singer: torch.Tensor | None = None,
                              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, its parts): L1 over all frames and over the hidden ones; given the crops'
        singers and singer_adversarial > 0, also the singer classifier's cross-entropy and
        accuracy on the encoding (its loss enters reversed for the encoder)."""
        content, visible = self.generator.encode(mel, mask)
        parts: dict[str, torch.Tensor] = {}
        if self.singer_parts is not None and singer is not None:
            logits = self.singer_parts.classify(content)  # (B, n_singers, T // 4)
            target = singer[:, None].expand(-1, logits.shape[-1])
            parts["singer_ce"] = nn.functional.cross_entropy(logits, target)
            parts["singer_accuracy"] = (logits.argmax(1) == target).float().mean()
            content = content + self.singer_parts.embedding(singer)[:, :, None]
        error = (self.generator.decode(content, visible) - mel).abs().mean(1)  # (B, T)
        hidden = 1.0 - mask[:, 0, 0]
        parts["l1"] = error.mean()
        parts["l1_masked"] = (error * hidden).sum() / hidden.sum().clamp(min=1.0)
        loss = parts["l1"] + self.hparams.masked_weight * parts["l1_masked"]
        if "singer_ce" in parts:
            # The gradient reversal makes this one term train the classifier to tell the
            # singer and the encoder to hide it.
            loss = loss + parts["singer_ce"]
        return loss, parts

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        mel = batch["mel"]
        loss, parts = self.reconstruction_losses(mel, self.mask(mel, self.mask_rng),
                                                 batch.get("singer"))
        logs = {"train/loss": loss, **{f"train/{k}": v for k, v in parts.items()},
                "lr/generator": self.optimizers().param_groups[0]["lr"]}
        seconds = self.step_clock.lap()
        if seconds:
            logs["throughput/samples_per_s"] = mel.shape[0] / seconds
            logs["throughput/frames_per_s"] = mel.shape[0] * mel.shape[-1] / seconds
        self.log_dict(logs)
        self.log("loss", loss, prog_bar=True, logger=False)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        norms = [p.grad.norm() for p in self.generator.parameters() if p.grad is not None]
        self.log("grad_norm/generator", torch.stack(norms).norm())

    def held_out_losses(self, item: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The loss parts on one held-out segment, under the same masks at every call (so
        the numbers compare across steps and against an untrained model)."""
        mel = item["mel"][None].to(self.device)
        rng = torch.Generator().manual_seed(int(item["index"]))
        singer = torch.tensor([int(item["singer"])], device=self.device) \
            if item["singer"] >= 0 else None
        return self.reconstruction_losses(mel, self.mask(mel, rng), singer)[1]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        parts = self.held_out_losses(batch)
        self.log_dict({f"val/{k}": v for k, v in parts.items()}, prog_bar=True,
                      sync_dist=True, batch_size=1)

    def preview_mels(self, val_set) -> dict[str, torch.Tensor]:
        """Log-mels of the first held-out segment: masked, reconstructed, real (denormalised
        with its singer's statistics, so they can be listened to)."""
        item = val_set[0]
        mel = item["mel"][None].to(self.device)
        mask = self.mask(mel, torch.Generator().manual_seed(0))
        with torch.no_grad():
            out = self.generator(mel, mask)
        floor = mel.min()
        mean, std = item["mean"].to(self.device), item["std"].to(self.device)
        return {"masked input": mel.where(mask[:, 0] > 0, floor) * std + mean,
                "reconstruction": out * std + mean, "real": mel * std + mean}


class SingerParts(nn.Module):
    """The adversarial pretraining's extra parts: a per-frame singer classifier behind a
    gradient reversal (scaled by the adversarial weight) and the decoder's singer embedding."""

    def __init__(self, channels: int, n_singers: int, reversal: float) -> None:
        super().__init__()
        self.reversal = reversal
        self.classifier = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.LeakyReLU(0.2),
                                        nn.Conv1d(channels, n_singers, 1))
        self.embedding = nn.Embedding(n_singers, channels)

    def classify(self, content: torch.Tensor) -> torch.Tensor:
        return self.classifier(ReverseGradient.apply(content, self.reversal))


class ReverseGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by -scale."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def load_pretraining(path: str, map_location: str | torch.device = "cpu") -> EncoderPretraining:
    """A pretraining run's model from its checkpoint or a shipped base (`pretrained:<name>`),
    without unpickling code."""
    return build_from_checkpoint(EncoderPretraining, resolve(path), "pretrain", map_location)
