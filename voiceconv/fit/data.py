"""Training data for a singer pair: unpaired random mel crops of A and of B from the output
of `voiceconv prep`, normalised with each singer's own statistics, resumable batch by batch
(`voiceconv.training.crops`)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from data_prep import prepared
from voiceconv.core.envelope import SpectralEnvelope
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.neighbours import neighbour_means
from voiceconv.models.content import ContentEncoder, ContentEncoderConfig
from voiceconv.training.crops import (
    CropData,
    IndexedBatches,
    Segment,
    SingerData,
    load_singer,
    require_crop_frames,
    trim_frames,
)


class RandomCrops(IndexedBatches):
    """Endless batches {"a": (B, n_mels, N), "b": (B, n_mels, N)} of unpaired random crops.

    Crops are drawn uniformly over every position where an N-frame window fits, so long
    segments are sampled in proportion to their length. With `neighbour_k`, batches also hold
    "nn_b" and "nn_a": for each frame of the A (B) crop, the mean mel of its k nearest frames
    of the other singer (`voiceconv.core.neighbours`), computed once here; `match` gives the
    features frames are matched on, (D, T) for a segment (default: its normalised mel).
    """

    def __init__(self, a: SingerData, b: SingerData, crop_frames: int, batch_size: int,
                 seed: int, neighbour_k: int = 0,
                 match: Callable[[Segment], torch.Tensor] | None = None) -> None:
        self.crop_frames, self.batch_size, self.seed = crop_frames, batch_size, seed
        self.mels, self.starts, usable = {}, {}, {}
        for key, singer in (("a", a), ("b", b)):
            usable[key] = [s for s in singer.segments if s.mel.shape[1] >= crop_frames]
            if not usable[key]:
                raise VoiceconvError(f"singer {singer.name!r} has no segment of at least "
                                     f"{crop_frames} frames; lower data.crop_frames")
            mels = [s.mel for s in usable[key]]
            offsets = np.cumsum([0] + [m.shape[1] for m in mels[:-1]])
            self.mels[key] = torch.from_numpy(np.concatenate(mels, axis=1))
            self.starts[key] = torch.from_numpy(np.concatenate(
                [o + np.arange(m.shape[1] - crop_frames + 1)
                 for o, m in zip(offsets, mels, strict=True)]))
        if neighbour_k:
            fewest = min(m.shape[1] for m in self.mels.values())
            if not 0 < neighbour_k <= fewest:
                raise VoiceconvError(f"data.neighbour_k must be in 1..{fewest} (the fewer "
                                     f"training frames of the two singers), got {neighbour_k}")
            if match is None:
                keys = self.mels
            else:
                segments = tqdm([*usable["a"], *usable["b"]], desc="content features",
                                unit="segment", leave=False)
                matched = [match(s) for s in segments]
                keys = {"a": torch.cat(matched[:len(usable["a"])], 1),
                        "b": torch.cat(matched[len(usable["a"]):], 1)}
            self.mels["nn_b"] = neighbour_means(keys["a"], keys["b"], neighbour_k,
                                                values=self.mels["b"])
            self.mels["nn_a"] = neighbour_means(keys["b"], keys["a"], neighbour_k,
                                                values=self.mels["a"])

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        rng = self.batch_rng(index)
        out = {}
        window = torch.arange(self.crop_frames)
        for key in ("a", "b"):
            pick = torch.randint(len(self.starts[key]), (self.batch_size,), generator=rng)
            frames = self.starts[key][pick][:, None] + window  # (B, N)
            out[key] = self.mels[key][:, frames].permute(1, 0, 2).contiguous()
            nn_key = "nn_b" if key == "a" else "nn_a"
            if nn_key in self.mels:
                out[nn_key] = self.mels[nn_key][:, frames].permute(1, 0, 2).contiguous()
        return out


class ValidationPairs(Dataset):
    """Fixed held-out pairs {"a": (n_mels, T), "b": (n_mels, T')}, whole segments
    trimmed to a multiple of 4 frames. With `parallel`, pairs are time-aligned excerpts of the
    same melody sung by both (sample-aligned corpora such as mbrola), so MCD is meaningful."""

    def __init__(self, a: SingerData, b: SingerData, parallel: bool, max_pairs: int,
                 max_frames: int, hop_s: float) -> None:
        self.parallel = parallel
        pairs = (parallel_pairs(a, b, hop_s) if parallel
                 else [(x.mel, y.mel) for x, y in zip(a.segments, b.segments, strict=False)])
        if not pairs:
            raise VoiceconvError(f"no validation pairs of {a.name!r} and {b.name!r}"
                                 + (" (parallel: no melody sung by both)" if parallel else ""))
        self.pairs = [(trim_frames(x, max_frames), trim_frames(y, max_frames))
                      for x, y in pairs[:max_pairs]]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        a, b = self.pairs[index]
        return {"a": torch.from_numpy(a), "b": torch.from_numpy(b)}


def parallel_pairs(a: SingerData, b: SingerData, hop_s: float,
                   min_frames: int = 32) -> list[tuple[np.ndarray, np.ndarray]]:
    """Aligned mel excerpts of segments that cover the same time of the same melody.

    The melody of a segment is its source name without the singer's name ("us2/d000.flac" and
    "us3/d000.flac" are one melody), and segments pair where their time spans overlap.
    """
    by_melody: dict[str, list[Segment]] = {}
    for seg in b.segments:
        by_melody.setdefault(seg.source.replace(b.name, ""), []).append(seg)
    pairs = []
    for x in a.segments:
        for y in by_melody.get(x.source.replace(a.name, ""), []):
            t0, t1 = max(x.start, y.start), min(x.end, y.end)
            n = int((t1 - t0) / hop_s)
            if n < min_frames:
                continue
            i, j = round((t0 - x.start) / hop_s), round((t0 - y.start) / hop_s)
            n = min(n, x.mel.shape[1] - i, y.mel.shape[1] - j)
            pairs.append((x.mel[:, i: i + n], y.mel[:, j: j + n]))
    return pairs


class SingerPairData(CropData):
    """Unpaired crops of singers A and B from `voiceconv prep` output, for CycleGAN training.

    Args:
        prep_dir: a `voiceconv prep` output folder holding both singers.
        singer_a: the source singer (as named in the manifest); singer_b: the target.
        crop_frames: frames per training crop (a multiple of 4; 64 frames = 0.74 s at 22 kHz).
        batch_size: crops per singer per step.
        val_prep_dir: held-out segments for validation (default: the last `val_segments`
            segments of each singer in `prep_dir`, excluded from training).
        val_parallel: validation pairs are the same melodies sung by both (mbrola).
        neighbour_k: if > 0, batches carry nearest-neighbour pseudo-targets (the mean of the k
            nearest frames of the other singer) for the model's `loss.neighbour` term.
        content_encoder: match those frames on a frozen self-supervised model's features
            (kNN-VC; a local weights file, `voiceconv.models.content`) instead of on the mels.
        spectral_envelope: train on the spectral envelopes of the mels (`voiceconv.core.envelope`):
            the timbre without the pitch. The generators then convert the singer and never
            the melody; conversion adds the source's harmonics back, at the key asked for.
        seed: the data seed; batch k is a function of (seed, k, rank) only.
    """

    def __init__(self, prep_dir: str, singer_a: str, singer_b: str, crop_frames: int = 64,
                 batch_size: int = 8, num_workers: int = 0, val_prep_dir: str | None = None,
                 val_segments: int = 4, val_parallel: bool = False, val_max_pairs: int = 8,
                 val_max_frames: int = 1024, neighbour_k: int = 0,
                 content_encoder: ContentEncoderConfig | None = None,
                 spectral_envelope: bool = False, seed: int = 0) -> None:
        super().__init__()
        # Nothing is read here: the prep output is read when first asked for (by the links
        # that hand the model its feature config and statistics, or by setup).
        self.save_hyperparameters()
        if content_encoder is not None:  # plain data in checkpoints (weights_only loading)
            self.hparams.content_encoder = dataclasses.asdict(content_encoder)
        self.prep_dir = Path(prep_dir)

    @functools.cached_property
    def feature_config(self) -> FeatureConfig:
        return prepared.feature_config(self.prep_dir)

    @property
    def neighbour_k(self) -> int:
        return self.hparams.neighbour_k

    @property
    def spectral_envelope(self) -> bool:
        return self.hparams.spectral_envelope

    @property
    def singer_stats(self) -> dict[str, dict[str, Any]]:
        """The statistics of what the generators see (of the envelopes, with
        `spectral_envelope`), keyed "a" and "b"."""
        a, b = self.singers
        return {"a": {"name": a.name, **a.stats}, "b": {"name": b.name, **b.stats}}

    @functools.cached_property
    def envelope(self) -> SpectralEnvelope | None:
        return SpectralEnvelope(self.feature_config) if self.hparams.spectral_envelope else None

    @functools.cached_property
    def singers(self) -> tuple[SingerData, SingerData]:
        """Singers A and B, every segment of theirs in `prep_dir`: read once, at first use."""
        self.feature_config  # noqa: B018 - checks first that prep_dir is a prep output
        return (load_singer(self.prep_dir, self.hparams.singer_a, envelope=self.envelope),
                load_singer(self.prep_dir, self.hparams.singer_b, envelope=self.envelope))

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        require_crop_frames(hp.crop_frames)
        a, b = self.singers
        if hp.val_prep_dir:
            val_dir = Path(hp.val_prep_dir)
            self.feature_config.require_same(prepared.feature_config(val_dir), "training features",
                                             "validation features")
            val_a = load_singer(val_dir, hp.singer_a, a.stats, self.envelope)
            val_b = load_singer(val_dir, hp.singer_b, b.stats, self.envelope)
        else:
            val_a, val_b = (_split_off(s, hp.val_segments) for s in (a, b))
        self.train_set = RandomCrops(a, b, hp.crop_frames, hp.batch_size, hp.seed,
                                     hp.neighbour_k, self.content_match())
        self.val_set = ValidationPairs(val_a, val_b, hp.val_parallel, hp.val_max_pairs,
                                       hp.val_max_frames, self.frame_seconds)

    @property
    def frame_seconds(self) -> float:
        return self.feature_config.hop_length / self.feature_config.sample_rate

    def content_match(self) -> Callable[[Segment], torch.Tensor] | None:
        """A segment's content features on its mel frame grid, if a content encoder is set."""
        if not self.hparams.content_encoder:
            return None
        if not self.hparams.neighbour_k:
            raise VoiceconvError("data.content_encoder matches nearest-neighbour targets: set "
                                 "data.neighbour_k too (e.g. 16)")
        encoder = ContentEncoder(ContentEncoderConfig(**self.hparams.content_encoder))
        return functools.partial(segment_content, encoder, self.feature_config)


def segment_content(encoder: ContentEncoder, config: FeatureConfig,
                    segment: Segment) -> torch.Tensor:
    """(dim, T): the content features of a segment's audio (kept in its feature file) on the
    frame grid of its mel (n_mels, T)."""
    audio = prepared.load_features(segment.features)["audio"]
    return encoder.frames(audio, config.sample_rate, config.hop_length, segment.mel.shape[1])


def _split_off(singer: SingerData, n: int) -> SingerData:
    """Move the last n segments (by id) of a singer into a held-out SingerData."""
    if n <= 0 or n >= len(singer.segments):
        raise VoiceconvError(f"singer {singer.name!r} has {len(singer.segments)} segments; "
                             f"cannot hold out {n} for validation (set data.val_prep_dir or "
                             "data.val_segments)")
    held = SingerData(singer.name, singer.stats, singer.segments[-n:])
    singer.segments = singer.segments[:-n]
    return held
