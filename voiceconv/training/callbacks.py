"""Trainer plumbing shared by every `voiceconv` training job: atomic checkpoints that load
without unpickling code, step-exact checkpoints on pre-emption signals, and previews."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from voiceconv.core.checkpoint import load_plain
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.fileio import atomic_path, full_disk


class StepClock:
    """Wall-clock seconds since the previous training step, for the throughput logs."""

    def __init__(self) -> None:
        self._last: float | None = None

    def lap(self) -> float | None:
        """Seconds since the last call (None on the first)."""
        now = time.perf_counter()
        last, self._last = self._last, now
        return None if last is None else now - last


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints under a temporary name and rename them into place, so a kill at any
    moment leaves either the previous checkpoint or the new one, never half a file; read them
    with `weights_only=True`, so a checkpoint can never run code."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            try:
                torch.save(checkpoint, tmp)
            except (OSError, RuntimeError) as exc:  # asked while the partial file still exists
                if (reason := full_disk(tmp.parent, exc)) is None:
                    raise
                raise VoiceconvError(
                    f"cannot write the checkpoint {path}: {reason}; the checkpoints saved "
                    "before are intact: make room and rerun the same command to resume") from exc

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return load_plain(str(path), map_location)


class LastCheckpoint(L.Callback):
    """Write `last.ckpt` when training ends and on SIGTERM or SIGUSR1 (SLURM's warning before
    the time limit): finish the current step, save, stop; on SIGUSR1 under SLURM also requeue.

    Saving between steps, never inside the signal handler, is what makes the checkpoint
    step-exact: the handler only raises a flag. (`ModelCheckpoint` adds one every N steps.)
    `stopped_by` is then the signal's number, so the command can exit as interrupted.

    Lightning also looks for SIGTERM after a step's callbacks (while the step is logged and
    validated) and between validation batches, and ends the run there with SIGTERMException:
    a signal that arrives after this callback has looked is saved on that exception.
    """

    def __init__(self, last_path: str, requeue: bool = True) -> None:
        self.last_path, self.requeue = last_path, requeue
        self.stopped_by: int | None = None
        self._signal: int | None = None
        self._previous: Any = None
        self._saved_step = self._started_step = -1
        self._batch_counted = False  # the step's batch already counted for the loggers

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started_step = trainer.global_step  # no step of this run to save before it
        if hasattr(signal, "SIGUSR1"):
            self._previous = signal.signal(signal.SIGUSR1, self._flag)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if hasattr(signal, "SIGUSR1") and self._previous is not None:
            signal.signal(signal.SIGUSR1, self._previous)
        if trainer.global_step != self._saved_step:
            self._save(trainer, batch_counted=True)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        if (not isinstance(exception, SIGTERMException) or trainer.sanity_checking
                or trainer.global_step in (self._saved_step, self._started_step)):
            return
        # The step's updates are done. Stopped in its validation, Lightning has not yet
        # counted the batch for the loggers; stopped after it, it has.
        self._save(trainer, batch_counted=not trainer.validating)
        self._stopped(trainer, int(signal.SIGTERM))

    def _save(self, trainer: L.Trainer, batch_counted: bool = False) -> None:
        self._batch_counted = batch_counted
        try:
            trainer.save_checkpoint(self.last_path, weights_only=False)
        finally:
            self._batch_counted = False
        self._saved_step = trainer.global_step

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if not self._batch_counted:
            return
        # Lightning counts a batch for its loggers' step after on_train_batch_end and adds one
        # when it restarts, so it expects checkpoints written before that count. This one is
        # written after it: store the count less one, or each resume of a finished run (to a
        # higher max_steps) shifts every logged step after it by one.
        loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
        if "_batches_that_stepped" in loop:
            loop["_batches_that_stepped"] -= 1

    def _flag(self, signum: int, frame: Any) -> None:
        self._signal = signum

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        usr1 = self._signal is not None
        stop = usr1 or trainer.received_sigterm
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        self._save(trainer)
        self._stopped(trainer, int(self._signal if usr1 else signal.SIGTERM))
        job = os.environ.get("SLURM_JOB_ID")
        if usr1 and self.requeue and job and trainer.is_global_zero:
            array = os.environ.get("SLURM_ARRAY_JOB_ID")
            job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else job
            subprocess.run(["scontrol", "requeue", job], check=False)
        trainer.should_stop = True

    def _stopped(self, trainer: L.Trainer, signum: int) -> None:
        self.stopped_by = signum
        rank_zero_info(f"pre-emption signal: saved {self.last_path} at step "
                       f"{trainer.global_step}; rerun with --ckpt_path last to continue")


class ResumedProgressBar(TQDMProgressBar):
    """Lightning's bar, with its rate and time left counted from where this run started.
    After a resume the bar starts at the restored batch, and Lightning's would divide all of
    it by the seconds since the restart (hundreds of steps per second, and no time left).
    On voiceconv's endless crops (one epoch of unknown length) the total is `max_steps`;
    Lightning's is the steps left, which after a resume is less than the bar's count, or
    unknown ("N/?")."""

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        bar = self.train_progress_bar
        if bar.n == 0:  # this epoch's first batch in this process: batch_idx batches came before
            bar.initial = bar.n = batch_idx
            if trainer.num_training_batches == float("inf") and trainer.max_steps > 0:
                bar.total = trainer.max_steps  # one endless epoch: batches are steps


class Previews(L.Callback):
    """Every `every_n_steps` steps, ask the module for the log-mels worth looking at
    (`preview_mels(val_set)`: a pair's conversions A->B, B->A and back; a pretraining's masked
    input and reconstruction) and keep what a person would rather see and hear than read: a
    PNG of the mel spectrograms and their renderings, in `<experiment>/previews/step_N/` and
    in wandb. Modules without `preview_mels` (vocoders) get none.

    `vocoder` is a name or checkpoint of a vocoder that takes its pitch from the mel
    (validation mels come without F0): griffin-lim (32 iterations, fast) or hifigan-universal.
    """

    def __init__(self, out_dir: str, every_n_steps: int = 500, vocoder: str = "griffin-lim",
                 griffin_lim_iters: int = 32) -> None:
        self.out_dir, self.every_n_steps = Path(out_dir), every_n_steps
        self.vocoder_name, self.griffin_lim_iters = vocoder, griffin_lim_iters
        self._vocoder = None

    def vocoder(self, config):
        from voiceconv.core.errors import VoiceconvError
        from voiceconv.models.vocoders import GriffinLim, load_vocoder

        if self._vocoder is None:
            if self.vocoder_name == "griffin-lim":
                self._vocoder = GriffinLim(config, n_iter=self.griffin_lim_iters)
            else:
                self._vocoder = load_vocoder(self.vocoder_name, config)
            if self._vocoder.uses_f0:
                raise VoiceconvError(f"previews need a vocoder that takes its pitch from the "
                                     f"mel (griffin-lim, hifigan-universal), not "
                                     f"{self._vocoder.name}")
        return self._vocoder

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if self.every_n_steps <= 0 or step % self.every_n_steps or not trainer.is_global_zero \
                or not hasattr(pl_module, "preview_mels"):
            return
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            mels = pl_module.preview_mels(trainer.datamodule.val_set)
        pl_module.train(was_training)
        self.write(step, {k: v[0].float().cpu() for k, v in mels.items()}, pl_module, trainer)

    def write(self, step: int, mels: dict[str, torch.Tensor], pl_module: L.LightningModule,
              trainer: L.Trainer) -> None:
        from voiceconv.core.audio import write_audio
        from voiceconv.core.plotting import png_bytes, pyplot

        folder = self.out_dir / f"step_{step:07d}"
        folder.mkdir(parents=True, exist_ok=True)
        plt = pyplot()
        fig, axes = plt.subplots(len(mels), 1, figsize=(8, 1.8 * len(mels)), layout="constrained")
        for ax, (name, mel) in zip(axes, mels.items(), strict=True):
            ax.imshow(mel.numpy(), origin="lower", aspect="auto", cmap="magma")
            ax.set_ylabel("mel bin")
            ax.set_title(name, fontsize=9, loc="left")
        axes[-1].set_xlabel("frame")
        fig.suptitle(f"step {step}")
        image = folder / "mels.png"
        with atomic_path(image) as tmp:
            tmp.write_bytes(png_bytes(fig))
        config = pl_module.feature_config
        vocoder = self.vocoder(config)
        audio = {}
        for name, mel in mels.items():
            audio[name] = vocoder.render(mel[None])[0].numpy()
            write_audio(folder / (name.replace(" ", "_") + ".flac"), audio[name],
                        config.sample_rate, subtype="PCM_16")
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                import wandb

                logger.experiment.log({
                    "previews/mels": wandb.Image(str(image)),
                    **{f"previews/{k}": wandb.Audio(v, sample_rate=config.sample_rate)
                       for k, v in audio.items()},
                    "trainer/global_step": step})


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # Keep the metrics of the run being resumed; continue its header.
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as fh:
                self.metrics_keys = next(csv.reader(fh), [])


class ResumableCSVLogger(CSVLogger):
    """CSVLogger whose `metrics.csv` survives a resume: Lightning's deletes the file when the
    log folder exists; this one appends (steps after the resumed checkpoint appear twice, as
    they were trained twice)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
