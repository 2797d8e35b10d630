"""Stage 5, stats: per-singer mel mean/std and log-F0 statistics.

Mel statistics normalise model inputs; F0 statistics (mean/std of log-F0 over voiced frames,
percentiles in Hz) drive automatic key fitting at conversion time.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.prepared import STATS, load_features
from voiceconv.core.fileio import atomic_path, write_text_atomic
from voiceconv.core.plotting import png_bytes, pyplot

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


def singer_stats(rows: list[dict[str, Any]], out_dir: Path) -> dict[str, dict[str, Any]]:
    by_singer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_singer[row["singer"]].append(row)
    stats = {}
    for singer, singer_rows in sorted(by_singer.items()):
        mel_sum = mel_sq = None
        n_frames = 0
        f0_voiced = []
        for row in singer_rows:
            feats = load_features(out_dir / row["features"])
            mel = feats["mel"].astype(np.float64)
            mel_sum = mel.sum(1) if mel_sum is None else mel_sum + mel.sum(1)
            mel_sq = (mel**2).sum(1) if mel_sq is None else mel_sq + (mel**2).sum(1)
            n_frames += mel.shape[1]
            f0_voiced.append(feats["f0"][feats["voiced"]].astype(np.float64))
        mel_mean = mel_sum / n_frames
        mel_std = np.sqrt(np.maximum(mel_sq / n_frames - mel_mean**2, 1e-12))
        f0 = np.concatenate(f0_voiced)
        lf0 = np.log(f0) if f0.size else np.array([np.nan])
        stats[singer] = {
            "n_segments": len(singer_rows),
            "n_frames": n_frames,
            "hours": round(sum(r["duration"] for r in singer_rows) / 3600, 6),
            "voiced_fraction": round(f0.size / n_frames, 6),
            "mel_mean": [round(float(v), 6) for v in mel_mean],
            "mel_std": [round(float(v), 6) for v in mel_std],
            "lf0_mean": _round(np.mean(lf0)),
            "lf0_std": _round(np.std(lf0)),
            "f0_percentiles_hz": {f"p{p}": _round(np.percentile(f0, p)) if f0.size else None
                                  for p in PERCENTILES},
        }
    return stats


def _round(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None


def write_stats(manifest: Path, out_dir: Path, rows: list[dict[str, Any]]) -> bool:
    """(Re)write OUT/stats.json unless it already describes this exact manifest."""
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    path = out_dir / STATS
    if path.is_file():
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("manifest_sha256") == digest:
                return False
        except json.JSONDecodeError:
            pass
    payload = {"manifest_sha256": digest, "singers": singer_stats(rows, out_dir)}
    plot_stats(payload["singers"], out_dir / "stats.png")
    write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return True





def plot_stats(stats: dict[str, dict[str, Any]], path: Path) -> None:
    """Each singer's sung range (F0 percentiles 5/25/50/75/95 on a note axis) and mean mel
    spectrum: what one looks at to pick a key shift or spot a badly prepared singer."""
    singers = sorted(s for s in stats if stats[s]["f0_percentiles_hz"]["p50"] is not None)
    if not singers:
        return  # nothing sung to draw
    plt = pyplot()
    fig, (ax_f0, ax_mel) = plt.subplots(1, 2, figsize=(12, 1.5 + 0.6 * len(singers)))
    for i, singer in enumerate(singers):
        p = stats[singer]["f0_percentiles_hz"]
        ax_f0.plot([p["p5"], p["p95"]], [i, i], color="grey")
        ax_f0.add_patch(plt.Rectangle((p["p25"], i - 0.3), p["p75"] - p["p25"], 0.6,
                                      color=f"C{i}", alpha=0.6))
        ax_f0.plot([p["p50"]] * 2, [i - 0.3, i + 0.3], color="black")
        mean, std = np.array(stats[singer]["mel_mean"]), np.array(stats[singer]["mel_std"])
        ax_mel.plot(mean, color=f"C{i}", label=singer)
        ax_mel.fill_between(np.arange(mean.size), mean - std, mean + std, color=f"C{i}",
                            alpha=0.15)
    ax_f0.set_xscale("log")
    midi = np.arange(36, 97, 12)  # C2 .. C7
    ax_f0.set_xticks(440 * 2 ** ((midi - 69) / 12), [f"C{m // 12 - 1}" for m in midi])
    ax_f0.minorticks_off()
    ax_f0.set(yticks=range(len(singers)), yticklabels=singers, ylim=(-0.7, len(singers) - 0.3),
              title="sung F0 (box: 25-75 %, line: 5-95 %, bar: median)")
    ax_mel.set(xlabel="mel bin", ylabel="log magnitude", title="mean mel spectrum +- std")
    ax_mel.legend(loc="upper right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(fig, dpi=90))
