"""Stage 3, segment: split each cleaned file at silences into segments of min_s..max_s.

Phrases are the stretches between pauses of at least `min_silence_s` (breaths and stop
consonants are shorter and never split a phrase). A phrase shorter than `min_s` joins the
next one across a short gap; a phrase longer than `max_s` is cut at its quietest frames.
Each segment keeps `pad_s` of context on both sides, never reaching into its neighbour.
Segment ids are `<file id>-<index>`: the same audio always gives the same ids.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.config import PrepConfig, SegmentConfig
from voiceconv.core.audio import read_audio

ENERGY_HOP_S = 0.01
ENERGY_WIN_S = 0.04


def settings(config: PrepConfig) -> dict[str, Any]:
    return {"segment": config.segment.__dict__}


def frame_energy_db(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """Mean-square level in dB of 40 ms frames every 10 ms, and the hop in samples."""
    hop, win = round(ENERGY_HOP_S * sample_rate), round(ENERGY_WIN_S * sample_rate)
    n_frames = max(1, 1 + (x.shape[0] - win) // hop)
    cumulative = np.concatenate(([0.0], np.cumsum(x.astype(np.float64) ** 2)))
    starts = np.arange(n_frames) * hop
    ends = np.minimum(starts + win, x.shape[0])
    power = (cumulative[ends] - cumulative[starts]) / np.maximum(ends - starts, 1)
    return 10 * np.log10(power + 1e-12), hop


def find_segments(x: np.ndarray, sample_rate: int, cfg: SegmentConfig) -> list[tuple[int, int]]:
    """[(start, end)) sample ranges of the segments of mono `x`."""
    energy, hop = frame_energy_db(x, sample_rate)
    silent = energy < np.percentile(energy, 95) - cfg.silence_db
    phrases = _phrases(silent, round(cfg.min_silence_s / ENERGY_HOP_S))
    to_samples = [(s * hop, min(x.shape[0], e * hop + round(ENERGY_WIN_S * sample_rate)))
                  for s, e in phrases]
    merged = _merge_short(to_samples, cfg, sample_rate)
    pieces = [p for span in merged for p in _split_long(span, energy, hop, cfg, sample_rate)]
    padded = _pad(pieces, round(cfg.pad_s * sample_rate), x.shape[0])
    return [(s, e) for s, e in padded if e - s >= cfg.min_s * sample_rate]


def _phrases(silent: np.ndarray, min_silence_frames: int) -> list[tuple[int, int]]:
    """Frame ranges between silent runs of at least `min_silence_frames`."""
    # Padding with silence on both sides: -1 marks where sound starts, +1 where it stops.
    edges = np.diff(np.concatenate(([1], silent.astype(np.int8), [1])))
    sound_starts, sound_ends = np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)
    phrases: list[tuple[int, int]] = []
    for s, e in zip(sound_starts, sound_ends, strict=True):
        if phrases and s - phrases[-1][1] < min_silence_frames:
            phrases[-1] = (phrases[-1][0], int(e))
        else:
            phrases.append((int(s), int(e)))
    return phrases


def _merge_short(spans: list[tuple[int, int]], cfg: SegmentConfig,
                 rate: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged:
            ms, me = merged[-1]
            if (me - ms < cfg.min_s * rate and s - me <= cfg.max_merge_gap_s * rate
                    and e - ms <= cfg.max_s * rate):
                merged[-1] = (ms, e)
                continue
        merged.append((s, e))
    return merged


def _split_long(span: tuple[int, int], energy: np.ndarray, hop: int, cfg: SegmentConfig,
                rate: int) -> list[tuple[int, int]]:
    s, e = span
    n = math.ceil((e - s) / (cfg.max_s * rate))
    if n <= 1:
        return [span]
    length = (e - s) / n
    search = round(min(length / 4, rate) / hop)  # look up to 1 s (or a quarter piece) around
    cuts = [s]
    for k in range(1, n):
        centre = round((s + k * length) / hop)
        lo, hi = max(0, centre - search), min(energy.shape[0], centre + search + 1)
        cuts.append(int(lo + np.argmin(energy[lo:hi])) * hop)
    cuts.append(e)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def _pad(spans: list[tuple[int, int]], pad: int, n: int) -> list[tuple[int, int]]:
    out = []
    for k, (s, e) in enumerate(spans):
        lo = 0 if k == 0 else (spans[k - 1][1] + s) // 2
        hi = n if k == len(spans) - 1 else (e + spans[k + 1][0]) // 2
        out.append((max(lo, s - pad), min(hi, e + pad)))
    return out


def segment_file(row: dict[str, Any], config: PrepConfig, out_dir: Path) -> dict[str, Any]:
    rate = row["sample_rate"]
    x = read_audio(out_dir / row["audio"])
    spans = find_segments(x, rate, config.segment)
    if not spans:
        return {"reject": f"no segment of at least {config.segment.min_s} s of singing "
                          f"(file is {x.shape[0] / rate:.2f} s)"}
    keep = ("singer", "source", "hash", "sample_rate", "audio")
    return {"rows": [{
        **{k: row[k] for k in keep},
        "id": f"{row['id']}-{k:03d}",
        "start": round(s / rate, 6),
        "end": round(e / rate, 6),
        "duration": round((e - s) / rate, 6),
    } for k, (s, e) in enumerate(spans)]}
