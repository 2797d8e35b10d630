"""Stage 4, features: log-mel, F0 and voicing of every segment, on one frame grid.

Each segment becomes `features/<singer>/<id>.npz` with `mel` (n_mels, T) float32, `f0` (T,)
Hz float32 (0 = unvoiced), `voiced` (T,) bool and `audio` (T * hop,) float32: the exact
samples analysed, so vocoder training needs nothing else.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from data_prep.config import PrepConfig
from data_prep.prepared import save_features
from voiceconv.core.audio import read_audio
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.features import LogMelSpectrogram, compute_features


def settings(config: PrepConfig) -> dict[str, Any]:
    return {"features": config.features.to_dict()}


@functools.lru_cache(maxsize=4)
def _mel_transform(config: FeatureConfig) -> LogMelSpectrogram:
    return LogMelSpectrogram(config)


def featurize_segment(row: dict[str, Any], config: PrepConfig, out_dir: Path) -> dict[str, Any]:
    fc = config.features
    rate = row["sample_rate"]
    start, stop = round(row["start"] * rate), round(row["end"] * rate)
    audio = read_audio(out_dir / row["audio"], start=start, stop=stop)
    feats = compute_features(audio, fc, _mel_transform(fc))
    feature_path = f"features/{row['id']}.npz"
    save_features(out_dir / feature_path, feats)
    return {"rows": [{
        **row,
        "features": feature_path,
        "n_frames": int(feats.f0.shape[0]),
        "voiced_fraction": round(float(feats.voiced.mean()), 4),
        "stage": "features",
    }]}

