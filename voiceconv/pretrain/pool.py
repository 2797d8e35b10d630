"""Training data for encoder pretraining: mel crops from a pool of many singers, in one or
more `voiceconv prep` outputs, each singer normalised with its own statistics (as the
CycleGAN sees its pair), and sampled singer-balanced: every crop first draws a singer
uniformly, then a position within that singer, so a singer with an hour of audio does not
drown one with a minute."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from data_prep import prepared
from voiceconv.core.envelope import SpectralEnvelope
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.training.crops import (
    CropData,
    IndexedBatches,
    SingerData,
    load_singer,
    require_crop_frames,
    trim_frames,
)


class PoolCrops(IndexedBatches):
    """Endless batches {"mel": (B, n_mels, N), "singer": (B,)}; batch k depends only on
    (seed, rank, k), so training resumes on exactly the batches it would have seen."""

    def __init__(self, singers: list[SingerData], crop_frames: int, batch_size: int,
                 seed: int) -> None:
        self.crop_frames, self.batch_size, self.seed = crop_frames, batch_size, seed
        self.mels, self.starts = [], []
        for singer in singers:
            usable = [s.mel for s in singer.segments if s.mel.shape[1] >= crop_frames]
            offsets = np.cumsum([0] + [m.shape[1] for m in usable[:-1]])
            self.mels.append(torch.from_numpy(np.concatenate(usable, axis=1)))
            self.starts.append(torch.from_numpy(np.concatenate(
                [o + np.arange(m.shape[1] - crop_frames + 1)
                 for o, m in zip(offsets, usable, strict=True)])))

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        rng = self.batch_rng(index)
        who = torch.randint(len(self.mels), (self.batch_size,), generator=rng)
        where = torch.rand(self.batch_size, generator=rng)
        crops = []
        for singer, u in zip(who.tolist(), where, strict=True):
            starts = self.starts[singer]
            start = int(starts[min(int(u * len(starts)), len(starts) - 1)])
            crops.append(self.mels[singer][:, start: start + self.crop_frames])
        return {"mel": torch.stack(crops), "singer": who}


class HeldOutSegments(Dataset):
    """Whole held-out segments in a fixed order: {"mel": (n_mels, T) normalised, T a multiple
    of 4, "mean"/"std": (n_mels, 1) of its singer (to listen to it), "singer": its index in
    `training_names` (the training batches' label; -1 if it has none), "index"}."""

    def __init__(self, singers: list[SingerData], max_frames: int,
                 training_names: list[str]) -> None:
        self.items = []
        for singer in singers:
            mean, std = (torch.tensor(singer.stats[k], dtype=torch.float32)[:, None]
                         for k in ("mel_mean", "mel_std"))
            label = training_names.index(singer.name) if singer.name in training_names else -1
            self.items += [(torch.from_numpy(trim_frames(s.mel, max_frames)), mean, std, label)
                           for s in singer.segments]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        mel, mean, std, singer = self.items[index]
        return {"mel": mel, "mean": mean, "std": std, "singer": singer, "index": index}


class SingerPoolData(CropData):
    """Crops of every singer in one or more `voiceconv prep` outputs, for `voiceconv pretrain`.

    Args:
        prep_dirs: `voiceconv prep` outputs, all made with the same feature config.
        crop_frames: frames per crop (a multiple of 4).
        batch_size: crops per step.
        exclude: regular expressions; segments whose source path matches one are left out
            (keep a pair's evaluation songs away from the base it will be fine-tuned from).
        val_segments: the last N segments (by id) of each singer with more than N + 1 are
            held out for validation.
        min_segments: singers with fewer usable segments (at least `crop_frames` long) are
            skipped, and named in the log.
        spectral_envelope: pretrain on the spectral envelopes of the mels, for pairs that
            convert envelopes (`voiceconv.fit.data.SingerPairData`).
        seed: the data seed; batch k is a function of (seed, k, rank) only.
    """

    def __init__(self, prep_dirs: list[str], crop_frames: int = 64, batch_size: int = 8,
                 exclude: list[str] | None = None, val_segments: int = 1,
                 val_max_frames: int = 512, min_segments: int = 1, num_workers: int = 0,
                 spectral_envelope: bool = False, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()

    @functools.cached_property
    def feature_config(self) -> FeatureConfig:
        dirs = [Path(d) for d in self.hparams.prep_dirs]
        if not dirs:
            raise VoiceconvError("data.prep_dirs is empty: give at least one prep output")
        config = prepared.feature_config(dirs[0])
        for other in dirs[1:]:
            config.require_same(prepared.feature_config(other), str(dirs[0]), str(other))
        return config

    @property
    def singers(self) -> list[SingerData]:
        """The training singers: what the batches' singer labels index."""
        return self.split[0]

    @property
    def spectral_envelope(self) -> bool:
        return self.hparams.spectral_envelope

    @property
    def n_singers(self) -> int:
        return len(self.singers)

    @functools.cached_property
    def split(self) -> tuple[list[SingerData], list[SingerData]]:
        """(training singers, held-out segments of each): read once, at first use."""
        hp = self.hparams
        require_crop_frames(hp.crop_frames)
        self.feature_config  # noqa: B018 - checks the folders and their feature configs first
        excluded = [re.compile(p) for p in hp.exclude or []]
        envelope = SpectralEnvelope(self.feature_config) if hp.spectral_envelope else None
        train, held, skipped = [], [], []
        for prep_dir in map(Path, hp.prep_dirs):
            names = sorted({r["singer"] for r in prepared.read_manifest(prep_dir)})
            for name in names:
                singer = load_singer(prep_dir, name, envelope=envelope)
                singer.name = f"{prep_dir}:{name}"
                singer.segments = [s for s in singer.segments
                                   if not any(p.search(s.source) for p in excluded)]
                if len(singer.segments) > hp.val_segments + 1:
                    held.append(SingerData(singer.name, singer.stats,
                                           singer.segments[len(singer.segments)
                                                           - hp.val_segments:]))
                    singer.segments = singer.segments[:len(singer.segments) - hp.val_segments]
                usable = sum(s.mel.shape[1] >= hp.crop_frames for s in singer.segments)
                (train if usable >= max(1, hp.min_segments) else skipped).append(singer)
        if skipped:
            rank_zero_info(f"pool: skipped {len(skipped)} singer(s) with fewer than "
                           f"{hp.min_segments} segment(s) of {hp.crop_frames} frames: "
                           + ", ".join(s.name for s in skipped))
        if not train:
            raise VoiceconvError(f"no singer in {', '.join(hp.prep_dirs)} has a segment of "
                                 f"{hp.crop_frames} frames; lower data.crop_frames")
        if not held:
            raise VoiceconvError("no singer has enough segments to hold some out for "
                                 "validation; lower data.val_segments or add data")
        return train, held

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        train, held = self.split
        self.train_set = PoolCrops(train, hp.crop_frames, hp.batch_size, hp.seed)
        self.val_set = HeldOutSegments(held, hp.val_max_frames, [s.name for s in train])
        minutes = sum(s.mel.shape[1] for singer in train for s in singer.segments) \
            * self.feature_config.hop_length / self.feature_config.sample_rate / 60
        rank_zero_info(f"pool: {len(train)} singers, {minutes:.1f} min of training segments, "
                       f"{len(self.val_set)} held-out segments")
