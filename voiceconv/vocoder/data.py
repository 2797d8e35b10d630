"""Vocoder training data: random crops of (log-mel, F0, audio) from any number of singers in
a `voiceconv prep` output; batch k is a function of (seed, rank, k) only. Optionally a share
of the crops is pitch-shifted in F0 and target audio but not in the mel given (see
`VocoderData`)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pyworld
import torch
from torch.utils.data import Dataset

from data_prep import prepared
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.training.crops import CropData, IndexedBatches


class SegmentAudio:
    """Every prepared segment's mel, F0 and audio, concatenated, with valid crop starts and
    the singer of each (an index into the order of first appearance in `rows`); with
    `world_analysis`, also each frame's WORLD spectral envelope and aperiodicity (from the
    segment's own audio and F0), for re-synthesising crops at another pitch."""

    def __init__(self, prep_dir: Path, rows: list[dict[str, Any]], crop_frames: int,
                 hop: int, sample_rate: int, world_analysis: bool = False) -> None:
        mels, f0s, audios, envelopes, aperiodicities, starts, offset = [], [], [], [], [], [], 0
        singers: dict[str, int] = {}
        start_singers = []
        for row in rows:
            feats = prepared.load_features(prep_dir / row["features"])
            frames = feats["mel"].shape[1]
            if frames >= crop_frames:
                mels.append(feats["mel"])
                f0s.append(feats["f0"])
                audios.append(feats["audio"][: frames * hop])
                starts.append(offset + np.arange(frames - crop_frames + 1))
                start_singers.append(np.full(len(starts[-1]),
                                             singers.setdefault(row["singer"], len(singers))))
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
        self.start_singers = torch.from_numpy(np.concatenate(start_singers))
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
    (WORLD re-synthesis) moved by up to ±`shift_semitones`; their mel stays the original's.
    A singer with n crop starts is drawn in proportion to n ** (1 - `singer_balance`)."""

    def __init__(self, data: SegmentAudio, batch_size: int, seed: int,
                 shift_prob: float = 0.0, shift_semitones: float = 0.0,
                 singer_balance: float = 0.0) -> None:
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.shift_prob, self.shift_semitones = shift_prob, shift_semitones
        self.start_weights = None
        if singer_balance:  # each start weighs n ** -balance, its singer n ** (1 - balance)
            counts = torch.bincount(data.start_singers).double()
            self.start_weights = counts[data.start_singers] ** -singer_balance

    def choose(self, rng: torch.Generator) -> torch.Tensor:
        """Which crop starts (indices into `data.starts`) a batch takes: its first draw."""
        if self.start_weights is None:  # every crop alike
            return torch.randint(len(self.data.starts), (self.batch_size,), generator=rng)
        return torch.multinomial(self.start_weights, self.batch_size, replacement=True,
                                 generator=rng)

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        d, rng = self.data, self.batch_rng(index)
        pick = d.starts[self.choose(rng)]
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
            feats = prepared.load_features(prep_dir / row["features"])
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
        singer_balance: how evenly the singers share the crops, whatever their minutes: a
            singer with n crops' worth of audio is drawn in proportion to n ** (1 - this).
            0 (default): every crop alike, so the singer with most audio dominates; 1: each
            singer equally often; 0.5: in proportion to the square root of their audio.
        seed: batch k is a function of (seed, k, rank) only.
    """

    def __init__(self, prep_dir: str, singers: list[str] | None = None, crop_frames: int = 32,
                 batch_size: int = 8, num_workers: int = 0, val_segments: int = 2,
                 val_max_frames: int = 512, pitch_shift_prob: float = 0.0,
                 pitch_shift_semitones: float = 6.0, singer_balance: float = 0.0,
                 seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.prep_dir = Path(prep_dir)

    @functools.cached_property
    def feature_config(self) -> FeatureConfig:
        return prepared.feature_config(self.prep_dir)

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        hp, hop = self.hparams, self.feature_config.hop_length
        rows = sorted(prepared.read_manifest(self.prep_dir), key=lambda r: r["id"])
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
                                    hp.pitch_shift_semitones, hp.singer_balance)
        self.val_set = WholeSegments(self.prep_dir, val, hp.val_max_frames)
