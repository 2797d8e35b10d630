"""The prep output format, read and written here only (by the prep stages and by every
training data module):

  OUT/manifest.jsonl        one row per segment; `features` is the path of its feature file
  OUT/feature_config.json   the FeatureConfig the features were made with
  OUT/features/<id>.npz     mel (n_mels, T), f0 (T,) Hz (0 = unvoiced), voiced (T,), audio
  OUT/stats.json            per-singer statistics under "singers"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.features import Features
from voiceconv.core.fileio import atomic_path, read_jsonl

MANIFEST = "manifest.jsonl"
FEATURE_CONFIG = "feature_config.json"
STATS = "stats.json"


def save_features(path: Path, features: Features) -> None:
    """One segment's features, written atomically (a killed prep leaves no half file)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, mel=features.mel, f0=features.f0, voiced=features.voiced,
                 audio=features.audio)


def load_features(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of one segment's .npz (no pickles are ever loaded)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def feature_config(prep_dir: Path) -> FeatureConfig:
    """The feature config of a prep output, or a one-line error if it is not one."""
    path = Path(prep_dir) / FEATURE_CONFIG
    if not path.is_file():
        raise VoiceconvError(f"{prep_dir} is not a `voiceconv prep` output "
                             f"(no {FEATURE_CONFIG}); run `voiceconv prep` first")
    return FeatureConfig.load(path)


def read_manifest(prep_dir: Path) -> list[dict[str, Any]]:
    return read_jsonl(Path(prep_dir) / MANIFEST)


def load_stats(prep_dir: str | Path) -> dict[str, dict[str, Any]]:
    return json.loads((Path(prep_dir) / STATS).read_text(encoding="utf-8"))["singers"]
