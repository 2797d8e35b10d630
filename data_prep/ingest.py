"""Stage 1, ingest: decode any format, down-mix to mono, resample, hash the source.

Ingest converts faithfully and measures; it decides nothing about quality. What it measures
on the source samples (peak, NaN/Inf count, clipped share) lets `clean` decide, because
resampling would smear clipped plateaus and spread NaNs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.config import PrepConfig
from data_prep.corpus import slug
from voiceconv.core.audio import decode, resample, to_mono, write_audio
from voiceconv.core.errors import AudioDecodeError

CLIP_RUN = 3  # consecutive samples at the peak value that count as a clipped plateau


def settings(config: PrepConfig) -> dict[str, Any]:
    return {"ingest": config.ingest.__dict__, "sample_rate": config.features.sample_rate}


def ingest_file(item: dict[str, Any], config: PrepConfig, out_dir: Path) -> dict[str, Any]:
    try:
        src = decode(item["path"], max_duration_s=config.ingest.max_duration_s)
    except AudioDecodeError as exc:
        return {"reject": str(exc)}
    samples = src.samples
    finite = np.isfinite(samples)
    nonfinite = int(samples.size - np.count_nonzero(finite))
    if nonfinite:
        samples = np.where(finite, samples, 0.0).astype(np.float32)
    peak = float(np.max(np.abs(samples)))
    target_rate = config.features.sample_rate
    mono = resample(to_mono(samples), src.sample_rate, target_rate)

    digest = file_sha256(item["path"])
    file_id = f"{slug(Path(item['source']).stem)}-{digest[:8]}"
    singer_dir = slug(item["singer"])
    audio_path = f"audio/ingest/{singer_dir}/{file_id}.wav"
    write_audio(out_dir / audio_path, mono, target_rate)
    return {"rows": [{
        "id": f"{singer_dir}/{file_id}",
        "singer": item["singer"],
        "source": item["source"],
        "hash": digest,
        "source_rate": src.sample_rate,
        "source_channels": src.channels,
        "source_format": f"{src.format}/{src.subtype}",
        "source_peak": round(peak, 6),
        "nonfinite_samples": nonfinite,
        "clipped_fraction": round(clipped_fraction(samples, peak), 6),
        "duration": round(mono.shape[0] / target_rate, 6),
        "sample_rate": target_rate,
        "audio": audio_path,
    }]}


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def clipped_fraction(samples: np.ndarray, peak: float) -> float:
    """Share of samples lying in runs of >= CLIP_RUN consecutive samples at +-peak.

    Clipping flattens the waveform at one value (full scale, or wherever it was later scaled
    to); natural audio practically never repeats its exact peak value three times in a row.
    """
    if peak <= 0:
        return 0.0
    at_peak = np.abs(samples) >= peak * (1 - 1e-6)
    clipped = 0
    for channel in at_peak.T:
        edges = np.diff(np.concatenate(([0], channel.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        lengths = ends - starts
        clipped += int(lengths[lengths >= CLIP_RUN].sum())
    return clipped / samples.size
