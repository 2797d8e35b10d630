"""Settings of the data-prep stages; the feature settings are voiceconv's FeatureConfig."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig


@dataclass(frozen=True)
class IngestConfig:
    max_duration_s: float = 4 * 3600.0  # longer files are refused rather than exhausting memory


@dataclass(frozen=True)
class CleanConfig:
    highpass_hz: float = 50.0  # below the lowest sung fundamental; removes DC and rumble
    target_lufs: float = -23.0  # EBU R128 programme loudness
    ceiling_dbtp: float = -1.0  # true-peak ceiling; wins over the loudness target
    silence_lufs: float = -60.0  # quieter files are near-silent: rejected
    max_clipped_fraction: float = 0.01  # share of samples in clipped runs; more is rejected


@dataclass(frozen=True)
class SegmentConfig:
    min_s: float = 1.5
    max_s: float = 10.0
    pad_s: float = 0.1  # kept around each segment (bounded by neighbours)
    min_silence_s: float = 0.3  # shorter pauses (breaths, consonants) never split
    silence_db: float = 35.0  # frames this far below the file's loud level are silence
    max_merge_gap_s: float = 1.0  # a short phrase joins the next one across at most this gap


@dataclass(frozen=True)
class PrepConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrepConfig:
        sections = {"ingest": IngestConfig, "clean": CleanConfig, "segment": SegmentConfig}
        unknown = set(data) - {*sections, "features"}
        if unknown:
            raise VoiceconvError(f"unknown config sections: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {"features": FeatureConfig.from_dict(data.get("features", {}))}
        for name, section in sections.items():
            values = data.get(name) or {}
            bad = set(values) - {f.name for f in dataclasses.fields(section)}
            if bad:
                raise VoiceconvError(f"unknown {name} settings: {', '.join(sorted(bad))}")
            kwargs[name] = section(**values)
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> PrepConfig:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise VoiceconvError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise VoiceconvError(f"config {path} must be a mapping of sections")
        return cls.from_dict(data)
