"""Training data that resumes exactly, shared by every crop-training stage: prepared singers
as normalised mels, and endless batch streams where batch k is a pure function of
(seed, k, rank). The data "sampler position" after a restart is just the number of batches
already trained, so resumed training sees exactly the batches an uninterrupted run would
have seen, with any number of loader workers.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from data_prep.prepared import load_features, load_stats, read_manifest
from voiceconv.core.envelope import SpectralEnvelope
from voiceconv.core.errors import VoiceconvError


@dataclasses.dataclass
class Segment:
    """One prepared segment: its normalised mel (n_mels, T), where it came from, and its
    feature file (which also holds its audio)."""

    id: str
    source: str
    start: float
    end: float
    mel: np.ndarray
    features: Path


@dataclasses.dataclass
class SingerData:
    name: str
    stats: dict[str, Any]
    segments: list[Segment]

    def normalise(self, mel: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.stats["mel_mean"], np.float32)[:, None]
        std = np.asarray(self.stats["mel_std"], np.float32)[:, None]
        return (mel - mean) / std


def load_singer(prep_dir: Path, singer: str, stats: dict[str, Any] | None = None,
                envelope: SpectralEnvelope | None = None) -> SingerData:
    """All segments of `singer` in a prep output, normalised with `stats` (default: its own).

    With `envelope`, each mel is replaced by its spectral envelope (the timbre without the
    pitch), and its own statistics are those of the envelopes (`mel_mean`, `mel_std`; the
    rest, such as the F0 percentiles, from the prep output).
    """
    manifest = read_manifest(prep_dir)
    rows = sorted((r for r in manifest if r["singer"] == singer), key=lambda r: r["id"])
    if not rows:
        singers = sorted({r["singer"] for r in manifest})
        raise VoiceconvError(f"no segments of singer {singer!r} in {prep_dir} "
                             f"(singers there: {', '.join(singers) or 'none'})")
    mels = []
    for row in rows:
        features = load_features(prep_dir / row["features"])
        mels.append(features["mel"] if envelope is None
                    else envelope.log_mel(features["mel"], features["f0"]))
    if stats is None:
        stats = load_stats(prep_dir)[singer]
        if envelope is not None:
            frames = np.concatenate(mels, axis=1).astype(np.float64)
            stats = {**stats, "mel_mean": frames.mean(1).tolist(),
                     "mel_std": np.maximum(frames.std(1), 1e-6).tolist()}
    data = SingerData(singer, stats, [])
    for row, mel in zip(rows, mels, strict=True):
        data.segments.append(Segment(row["id"], row["source"], row["start"], row["end"],
                                     data.normalise(mel).astype(np.float32),
                                     prep_dir / row["features"]))
    return data


class IndexedBatches(IterableDataset):
    """An endless stream where batch k = `batch(k)` depends only on (seed, rank, k): resuming
    at step k is starting at `first_batch = k`, with any number of loader workers."""

    seed: int
    first_batch: int = 0
    rank: int = 0

    def batch_rng(self, index: int) -> torch.Generator:
        seed = np.random.SeedSequence([self.seed, self.rank, index]).generate_state(2)
        return torch.Generator().manual_seed(int(seed[0]) << 32 | int(seed[1]))

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loader(self, trainer, num_workers: int) -> DataLoader:
        """A loader that resumes: it starts with the batch after the last one `trainer`
        trained (one batch per step), on this process's rank."""
        self.first_batch = trainer.global_step if trainer else 0
        self.rank = trainer.global_rank if trainer else 0
        return DataLoader(self, batch_size=None, num_workers=num_workers,
                          pin_memory=torch.cuda.is_available(),
                          worker_init_fn=stop_signal_policy())

    def __iter__(self):
        worker = get_worker_info()
        step, offset = (1, 0) if worker is None else (worker.num_workers, worker.id)
        index = self.first_batch + offset
        while True:
            yield self.batch(index)
            index += step


# Per start method: set by this process's exit hook (see stop_signal_policy).
_trainer_exiting: dict[str | None, Any] = {}


def stop_signal_policy(context: str | None = None) -> Callable[[int], None]:
    """The `worker_init_fn` of loaders whose workers start by `context` (a multiprocessing
    start method; default: the default one): they outlive the job's stop signals (SIGTERM,
    SIGUSR1) and leave them to the trainer, as PyTorch's workers leave SIGINT to it. A
    scheduler (SLURM, `timeout`) signals every process of the job, and a worker killed by it
    ended the run with a DataLoader error before the trainer could save its last checkpoint.

    Ignoring the signals is not enough: when the trainer exits, multiprocessing stops the
    workers with SIGTERM too (PyTorch leaves it that job when an iterator is still alive at
    exit), and a worker that ignored it kept the exit waiting forever. So the trainer sets an
    event as it exits, and a worker ends on a stop signal once that event is set."""
    if context not in _trainer_exiting:
        event = multiprocessing.get_context(context).Event()  # shared with that kind only
        atexit.register(event.set)  # runs before multiprocessing's own exit hook
        _trainer_exiting[context] = event
    return functools.partial(_leave_stop_signals_to_the_trainer,
                             trainer_exiting=_trainer_exiting[context])


def _leave_stop_signals_to_the_trainer(worker_id: int, trainer_exiting: Any) -> None:
    def stop_if_the_trainer_is_exiting(signum: int, frame: Any) -> None:
        if trainer_exiting.is_set():
            os._exit(0)  # what the trainer's terminate() asks; its data is not needed

    for name in ("SIGTERM", "SIGUSR1"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop_if_the_trainer_is_exiting)


def trim_frames(mel: np.ndarray, max_frames: int) -> np.ndarray:
    n = min(mel.shape[1], max_frames) // 4 * 4
    return np.ascontiguousarray(mel[:, :n])


class CropData(L.LightningDataModule):
    """What the crop-training data modules share: `setup` fills `train_set` (batches indexed
    by step, see `IndexedBatches`) and `val_set`; these serve them."""

    train_set: IndexedBatches | None = None
    val_set: Dataset | None = None

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None
        return self.train_set.loader(self.trainer, self.hparams.num_workers)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None
        return DataLoader(self.val_set, batch_size=None)


def require_crop_frames(crop_frames: int) -> None:
    """Crops go through two stride-2 down-samplings of the time axis."""
    if crop_frames % 4:
        raise VoiceconvError(f"data.crop_frames must be a multiple of 4 (got {crop_frames})")
