"""Stage 2, clean: reject unusable audio, remove DC and rumble, normalise loudness.

Loudness is ITU-R BS.1770 integrated loudness (K-weighted, gated) brought to a target in
LUFS, with a true-peak ceiling that wins when the two disagree: real loudness normalisation,
not peak scaling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import butter, sosfiltfilt

from data_prep.config import PrepConfig
from voiceconv.core.audio import read_audio, write_audio
from voiceconv.core.loudness import MIN_LOUDNESS_DURATION_S, integrated_loudness, normalize_loudness


def settings(config: PrepConfig) -> dict[str, Any]:
    return {"clean": config.clean.__dict__}


def why_unusable(row: dict[str, Any], config: PrepConfig) -> str | None:
    """The reason to reject an ingested file before touching its audio, or None."""
    c = config.clean
    if row["nonfinite_samples"]:
        return f"contains {row['nonfinite_samples']} NaN/Inf samples"
    if row["source_peak"] == 0:
        return "digital silence (every sample is zero)"
    if row["duration"] < MIN_LOUDNESS_DURATION_S:
        return (f"too short ({row['duration']:.3f} s); loudness needs at least "
                f"{MIN_LOUDNESS_DURATION_S} s")
    if row["clipped_fraction"] > c.max_clipped_fraction:
        return (f"heavily clipped ({100 * row['clipped_fraction']:.1f}% of samples in clipped "
                f"runs; limit {100 * c.max_clipped_fraction:.1f}%)")
    return None


def clean_file(row: dict[str, Any], config: PrepConfig, out_dir: Path) -> dict[str, Any]:
    if reason := why_unusable(row, config):
        return {"reject": reason}
    c = config.clean
    rate = row["sample_rate"]
    x = read_audio(out_dir / row["audio"]).astype(np.float64)
    dc_offset = float(x.mean())
    sos = butter(2, c.highpass_hz, btype="highpass", fs=rate, output="sos")
    # Zero-phase, so cleaning never shifts the audio against its time stamps.
    x = sosfiltfilt(sos, x - dc_offset)
    loudness = integrated_loudness(x, rate)
    if not loudness > c.silence_lufs:
        # -inf: every 400 ms block is under BS.1770's absolute gate of -70 LUFS.
        level = f"{loudness:.1f} LUFS" if np.isfinite(loudness) else "below -70 LUFS"
        return {"reject": f"near-silent ({level}; threshold {c.silence_lufs:.0f} LUFS)"}
    result = normalize_loudness(x, rate, c.target_lufs, c.ceiling_dbtp)
    audio_path = row["audio"].replace("audio/ingest/", "audio/clean/", 1)
    write_audio(out_dir / audio_path, result.audio, rate)
    return {"rows": [{
        **row,
        "audio": audio_path,
        "dc_offset": round(dc_offset, 6),
        "loudness_before_lufs": round(loudness, 3),
        "loudness_lufs": round(result.loudness_lufs, 3),
        "true_peak_dbtp": round(result.true_peak_dbtp, 3),
        "gain_db": round(result.gain_db, 3),
        "peak_limited": bool(result.peak_limited),
    }]}
