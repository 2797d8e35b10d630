"""The LightningCLI behind `voiceconv fit` and `voiceconv pretrain`: any voiceconv
LightningModule and data module from YAML, with the run folder, loggers, checkpoints,
pre-emption handling and progress every training job shares."""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

from voiceconv.core.cpu import runs_bf16_fast
from voiceconv.core.errors import VoiceconvError, option_error
from voiceconv.training.callbacks import (
    AtomicCheckpointIO,
    LastCheckpoint,
    Previews,
    ResumableCSVLogger,
    ResumedProgressBar,
)
from voiceconv.training.curves import TrainingCurves


class VoiceconvCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--experiment", type=str, default="default",
                            help="experiment name: outputs go to <experiments_root>/<experiment>")
        parser.add_argument("--experiments_root", type=str, default="checkpoints")
        parser.add_argument("--wandb", type=bool, default=True,
                            help="also log to wandb, offline (no account or network needed)")
        parser.add_argument("--checkpoint_every_n_steps", type=int, default=500)
        parser.add_argument("--monitor", type=str, default="val/mcd_mean_envelope",
                            help="validation metric (lower is better) that ranks checkpoints")
        parser.add_argument("--save_top_k", type=int, default=3)
        parser.add_argument("--preview_every_n_steps", type=int, default=500,
                            help="mel images and audio of conversions every N steps (0: never)")
        parser.add_argument("--preview_vocoder", type=str, default="griffin-lim",
                            help="renders the previews: griffin-lim, hifigan-universal or a "
                            "vocoder checkpoint that takes its pitch from the mel")
        # What model and data must agree on is set once, in the data config, and handed to
        # the model as both are built; a model takes those it has a parameter for.
        for name in DATA_FACTS:
            parser.link_arguments("data", f"model.init_args.{name}", apply_on="instantiate",
                                  compute_fn=functools.partial(_data_fact, name))

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except Exception as exc:  # noqa: BLE001 - re-raised unless a user error is inside
            # jsonargparse wraps what a class or a link raised in a page of parser text; the
            # user's one line is the VoiceconvError within.
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, VoiceconvError):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                raise
            raise cause from None

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        cfg = self.config[self.subcommand]
        exp_dir = Path(cfg.experiments_root) / cfg.experiment
        ckpt_dir = exp_dir / "checkpoints"
        _say_where_training_starts(cfg.get("ckpt_path"), ckpt_dir / "last.ckpt")
        trainer_cfg = cfg.trainer
        instantiated = self._get(self.config_init, "trainer", default={})
        if trainer_cfg.logger in (None, True):
            loggers = [ResumableCSVLogger(save_dir=exp_dir, name="", version="")]
            if cfg.wandb:
                loggers.append(_offline_wandb(exp_dir, cfg.experiment))
            kwargs["logger"] = loggers
        kwargs["default_root_dir"] = str(exp_dir)
        if trainer_cfg.strategy == "ddp":
            # Each backward pass of a GAN step reaches only one side's parameters (D, then G),
            # which plain DDP takes for an error; it must be told to expect unused ones.
            kwargs["strategy"] = "ddp_find_unused_parameters_true"
        plugins = [AtomicCheckpointIO()]
        if SLURMEnvironment.detect():
            # Our LastCheckpoint saves step-exactly and requeues; Lightning's own handler
            # would save from inside the signal handler, possibly between the D and G updates.
            plugins.append(SLURMEnvironment(auto_requeue=False))
        kwargs["plugins"] = plugins + _as_list(instantiated.get("plugins"))
        kwargs["callbacks"] = [
            *_as_list(instantiated.get("callbacks")),
            # One last.ckpt, overwritten in place (atomically), never last-v1.ckpt.
            ModelCheckpoint(dirpath=ckpt_dir, filename="step{step:07d}", save_last=True,
                            save_top_k=0, every_n_train_steps=cfg.checkpoint_every_n_steps,
                            auto_insert_metric_name=False, enable_version_counter=False),
            ModelCheckpoint(dirpath=ckpt_dir, monitor=cfg.monitor, mode="min",
                            save_top_k=cfg.save_top_k, auto_insert_metric_name=False,
                            filename="best-step{step:07d}-" + _safe(cfg.monitor) + "{"
                            + cfg.monitor + ":.3f}"),
            LastCheckpoint(str(ckpt_dir / "last.ckpt")),
            TrainingCurves(str(exp_dir / "metrics.csv"), str(exp_dir / "curves.png")),
            *([Previews(str(exp_dir / "previews"), cfg.preview_every_n_steps,
                        cfg.preview_vocoder)]
              if cfg.preview_every_n_steps > 0 else []),
        ]
        if trainer_cfg.enable_progress_bar is not False and not any(
                isinstance(c, ProgressBar) for c in kwargs["callbacks"]):
            kwargs["callbacks"].append(ResumedProgressBar())
        trainer = super().instantiate_trainer(**kwargs)
        if (str(trainer.precision).startswith("bf16")
                and trainer.strategy.root_device.type == "cpu" and not runs_bf16_fast()):
            rank_zero_warn("this CPU has no bf16 units (AMX or AVX512-BF16): bf16 trains "
                           "about 10x slower than fp32 here; leave trainer.precision at 32")
        return trainer


def _say_where_training_starts(ckpt_path: str | None, last: Path) -> None:
    """In place of Lightning's two warnings, which name its own source files: one that reads
    as a fault on every first run of a recipe (`--ckpt_path last` with nothing to resume yet;
    its hint is for code that does not save a last checkpoint, which voiceconv always does),
    and one, on every resume, that the checkpoint folder is not empty."""
    if ckpt_path == "last" and not last.is_file():
        rank_zero_info(f"nothing to resume in {last.parent} yet: training starts at step 0")
    elif ckpt_path is None and last.is_file():
        rank_zero_info(f"warning: {last.parent.parent} holds a run already: this one starts "
                       "again at step 0 and replaces its checkpoints (to continue that run "
                       "instead, add --ckpt_path last; to keep it, pick another --experiment)")


def _one_line_errors(prog: str) -> type[LightningArgumentParser]:
    """A parser whose option errors are one line that names `prog` (jsonargparse's own print
    about 55 lines of usage first for `fit`)."""

    class Parser(LightningArgumentParser):
        def error(self, message: str, ex: Exception | None = None):
            if not self.exit_on_error or os.environ.get("JSONARGPARSE_DEBUG"):
                return super().error(message, ex)  # jsonargparse trying alternatives
            raise option_error(message, prog)

    return Parser


# Data module attributes a model may take as constructor arguments (see `link_arguments`).
DATA_FACTS = ("feature_config", "singer_stats", "neighbour_k", "n_singers", "spectral_envelope")


def _data_fact(name: str, data: L.LightningDataModule) -> Any:
    return getattr(data, name, None)


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, list) else [value]


def _safe(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", metric.split("/")[-1])


def _offline_wandb(exp_dir: Path, experiment: str):
    from lightning.pytorch.loggers import WandbLogger

    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    exp_dir.mkdir(parents=True, exist_ok=True)
    # A stable id: a resumed run appends to the same wandb run instead of starting another.
    logger = WandbLogger(save_dir=str(exp_dir), project="voiceconv", name=experiment,
                         id=_safe(str(exp_dir.resolve()))[-64:], offline=True,
                         resume="allow", settings={"console": "off", "silent": True})
    # Lightning always passes `anonymous` to wandb.init, which then prints a deprecation
    # WARNING on every run; the setting does nothing.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


def _no_cloud_advert(record: logging.LogRecord) -> bool:
    """Lightning advertises its cloud logger on every run; voiceconv's logging is offline.
    (A named function: logging adds the same filter once, however often `run` is called.)"""
    return "litlogger" not in record.getMessage()


def run(argv: list[str], prog: str) -> int:
    """Train as `argv` says (LightningCLI options after the subcommand)."""
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*The number of training batches.*")
    warnings.filterwarnings("ignore", message=r".*args parameter is intended to run from within.*")
    warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
    # Checkpoints hold the state after the step's updates, consistent with the loop counters.
    warnings.filterwarnings("ignore", message=r".*ModelCheckpoint with manual optimization.*")
    # Said in voiceconv's words instead (`_say_where_training_starts`).
    warnings.filterwarnings("ignore", message=r".*there is no last checkpoint available.*")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_no_cloud_advert)
    # Stopped early by a signal (pre-emption), the command exits as the signal would have, so
    # that a recipe or a scheduler sees an unfinished run and reruns it, which resumes.
    try:
        cli = VoiceconvCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True,
                           subclass_mode_data=True, args=["fit", *argv],
                           save_config_kwargs={"overwrite": True},
                           auto_configure_optimizers=False, seed_everything_default=0,
                           parser_class=_one_line_errors(prog),
                           parser_kwargs={"prog": prog.removesuffix(" fit")})
    except MisconfigurationException as exc:  # Lightning's word for a bad option value
        raise VoiceconvError(str(exc)) from None
    except SIGTERMException:  # Lightning's loops end a SIGTERM'd run with SystemExit(None)
        print(f"{prog}: stopped by SIGTERM; rerun the same command to resume", file=sys.stderr)
        return 128 + signal.SIGTERM
    stopped = [c.stopped_by for c in cli.trainer.callbacks
               if isinstance(c, LastCheckpoint) and c.stopped_by is not None]
    return 128 + stopped[0] if stopped else 0
