"""`voiceconv eval`: pair converted files with references (in non-parallel mode, with their
sources) by relative path and measure them.

F0 is judged against the score when one is given (a perfect melody), else against the source
audio when given (the melody a conversion must keep), else against the reference audio.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from voiceconv.core.audio import AUDIO_EXTENSIONS, load_mono
from voiceconv.core.errors import ArgumentParser, VoiceconvError
from voiceconv.core.fileio import atomic_path, read_jsonl, require_writable, write_text_atomic
from voiceconv.core.metrics import (
    FRAME_PERIOD_MS,
    analyse,
    decimation_grids,
    duration_ratio,
    f0_from_score,
    f0_metrics,
    f0_track,
    loudness_lufs,
    mel_cepstral_distortion,
    stable_frames,
    transposition_semitones,
)
from voiceconv.core.plotting import format_number
from voiceconv.core.threads import concurrently, in_order

SUMMARY_KEYS = ("mcd_db", "f0_rmse_cents", "f0_median_cents", "f0_corr", "vuv_error",
                "gross_pitch_error", "gross_pitch_error_stable", "stable_reference_share",
                "gross_pitch_error_20pct", "octave_error_rate", "speaker_sim_target",
                "speaker_sim_source", "speaker_sim_shift", "speaker_sim_target_unconverted",
                "speaker_sim_gain", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl",
                "dnsmos_sig_source", "dnsmos_bak_source", "dnsmos_ovrl_source",
                "dnsmos_ovrl_change", "loudness_lufs", "duration_ratio", "f0_key_semitones")


@dataclass(frozen=True)
class Pair:
    key: str  # relative path without extension
    converted: Path
    reference: Path | None  # None: non-parallel, the target's voice from its recordings
    source: Path | None


def audio_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise VoiceconvError(f"folder not found: {folder}")
    return {p.relative_to(folder).with_suffix("").as_posix(): p
            for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name.lower().endswith(AUDIO_EXTENSIONS)}


def voice_files(folder: Path | None) -> list[Path] | None:
    """A singer's recordings for its voice centroid (None: no folder given)."""
    if folder is None:
        return None
    files = list(audio_files(folder).values())
    if not files:
        raise VoiceconvError(f"no audio in {folder} to stand for the singer's voice")
    return files


def pair_files(converted: Path, reference: Path | None,
               source: Path | None = None) -> tuple[list[Pair], list[dict[str, str]]]:
    """Converted files paired with their references (without references, with their sources);
    and the converted files that have none, as failures (a file left out silently would make
    the scores look like the whole set's)."""
    conv, src = audio_files(converted), audio_files(source) if source else {}
    # `convert --accompaniment` writes each song's mix beside it: the mix is no conversion.
    conv = {k: p for k, p in conv.items() if not (k.endswith(".mix") and k[:-4] in conv)}
    ref = audio_files(reference) if reference is not None else {}
    partner, named = (reference, ref) if reference is not None else (source, src)
    pairs = [Pair(k, conv[k], ref.get(k), src.get(k)) for k in conv if k in named]
    if not pairs:
        raise VoiceconvError(f"no file in {converted} has a namesake in {partner} "
                             "(files are paired by relative path, extension ignored)")
    unpaired = [{"file": k, "reason": f"{conv[k]}: no namesake in {partner}"}
                for k in conv if k not in named]
    return pairs, unpaired


def load_score(path: Path) -> dict[str, list[list[float]]]:
    """mbrola-style manifest rows {"wav": "voice/melody.flac", "notes": [[ms, ms, Hz], ...]}."""
    return {Path(row["wav"]).with_suffix("").as_posix(): row["notes"] for row in read_jsonl(path)}


def evaluate_pair(pair: Pair, mode: str, score: dict[str, list] | None,
                  sample_rate: int, transposed: bool = False) -> dict[str, Any]:
    # Every file of the pair is read here, used or not, so that a pair with an unreadable
    # one is left out before the speaker, naturalness and report stages read them again.
    converted = load_mono(pair.converted, sample_rate)
    reference = load_mono(pair.reference, sample_rate) if pair.reference is not None else None
    source = load_mono(pair.source, sample_rate) if pair.source is not None else None
    if mode == "nonparallel" and source is None:
        raise VoiceconvError(f"{pair.converted}: no namesake in --source (the melody to keep)")
    if mode == "aligned":
        require_aligned(pair, converted, reference, sample_rate)
    by_score = mode != "nonparallel" and score is not None and pair.key in score
    # The analyses are independent, and harvest (most of their time) releases the GIL. The
    # source is tracked on each of harvest's decimation grids: where they disagree, its F0 is
    # not defined to the gross-error tolerance (`gross_pitch_error_stable` leaves those out).
    grids = 0 if source is None or by_score else decimation_grids(sample_rate)
    conv_frames, ref_frames, *source_tracks = concurrently(
        lambda: analyse(converted, sample_rate, what=str(pair.converted)),
        lambda: (None if mode == "nonparallel"
                 else analyse(reference, sample_rate, what=str(pair.reference))),
        *(lambda g=g: f0_track(source, sample_rate, what=str(pair.source), grid=g)
          for g in range(grids)))
    f0_source = source_tracks[0] if source_tracks else None
    source_stable = stable_frames(source_tracks) if source_tracks else None
    row: dict[str, Any] = {"file": pair.key}
    f0_converted = conv_frames.f0
    if mode == "nonparallel":
        # The reference is another song of the target singer: only who sings is comparable
        # (speaker similarity); the melody is measured against the source.
        row.update({"mcd_db": math.nan, "mcd_frames": 0, "mcd_silent_excluded": 0})
        f0_reference, against, length_reference = f0_source, "source", source
    else:
        mcd = mel_cepstral_distortion(ref_frames, conv_frames, mode)
        row.update({"mcd_db": mcd.mcd_db, "mcd_frames": mcd.n_frames,
                    "mcd_silent_excluded": mcd.n_silent_excluded})
        length_reference = reference
        if by_score:
            f0_reference, against = f0_from_score(score[pair.key], len(f0_converted)), "score"
        elif f0_source is not None:
            f0_reference, against = f0_source, "source"
        else:
            # Unaligned pairs compare F0 along the MCD alignment path.
            f0_reference, against = ref_frames.f0[mcd.path[:, 0]], "reference"
            f0_converted = f0_converted[mcd.path[:, 1]]
    if transposed:
        # A key-shifted conversion keeps the melody if it follows the reference moved by a
        # whole number of semitones: measure it against that.
        key = transposition_semitones(f0_reference, f0_converted)
        f0_reference = f0_reference * 2.0 ** (key / 12)
        row["f0_key_semitones"] = key
    reference_stable = source_stable if against == "source" else None
    f0 = f0_metrics(f0_reference, f0_converted, reference_stable)
    row.update({"f0_against": against, "f0_rmse_cents": f0.rmse_cents,
                "f0_median_cents": f0.median_cents, "f0_corr": f0.corr,
                "vuv_error": f0.vuv_error, "gross_pitch_error": f0.gross_pitch_error,
                "gross_pitch_error_stable": f0.gross_pitch_error_stable,
                "stable_reference_share": f0.stable_reference_share,
                "gross_pitch_error_20pct": f0.gross_pitch_error_20pct,
                "octave_error_rate": f0.octave_error_rate, "f0_note": f0.reason,
                "loudness_lufs": loudness_lufs(converted, sample_rate),
                "duration_ratio": duration_ratio(converted, length_reference)})
    row["_curves"] = {"f0_reference": f0_reference, "f0_converted": f0_converted,
                      "reference_stable": reference_stable}
    return row


# Sample-aligned files may differ by a few frames of padding, not by more.
ALIGNED_LENGTH_TOLERANCE_S = 0.1


def require_aligned(pair: Pair, converted: np.ndarray, reference: np.ndarray,
                    sample_rate: int) -> None:
    """Aligned mode compares frame i with frame i: files of other lengths are not aligned,
    and their frame-by-frame scores would be noise that reads as a bad conversion."""
    seconds = converted.shape[0] / sample_rate, reference.shape[0] / sample_rate
    if abs(seconds[0] - seconds[1]) > max(ALIGNED_LENGTH_TOLERANCE_S, 0.01 * seconds[1]):
        raise VoiceconvError(f"{pair.converted}: {seconds[0]:.2f} s against its reference's "
                             f"{seconds[1]:.2f} s, so not sample-aligned: use --mode dtw for "
                             "unaligned pairs of the same song")


def evaluate(converted: Path, reference: Path | None, out: Path, source: Path | None = None,
             score_path: Path | None = None, mode: str = "aligned", sample_rate: int = 16000,
             progress: bool = True, transposed: bool = False, target_voice: Path | None = None,
             source_voice: Path | None = None) -> dict[str, Any]:
    from voiceconv.eval.naturalness import naturalness
    from voiceconv.eval.report import write_report
    from voiceconv.eval.speaker import speaker_similarities

    if not 8000 <= sample_rate <= 192000:  # F0 to 1100 Hz and 24 cepstra need a band
        raise VoiceconvError(f"--sample-rate must be 8000 to 192000 Hz (got {sample_rate}); "
                             "the default, 16000, suits every measure")
    if mode == "nonparallel" and source is None:
        raise VoiceconvError("--mode nonparallel needs --source (the melody to keep)")
    if reference is None and mode != "nonparallel":
        raise VoiceconvError(f"--mode {mode} measures against references: give --reference "
                             "(only --mode nonparallel goes without)")
    if reference is None and target_voice is None:
        raise VoiceconvError("--mode nonparallel without --reference needs --target-voice "
                             "(recordings of the target singer, for the speaker similarity)")
    pairs, unpaired = pair_files(converted, reference, source)
    score = load_score(score_path) if score_path else None
    require_writable(out)

    def measure(pair: Pair) -> dict[str, Any] | str:
        """The pair's row, or why it could not be measured (one bad file spoils no other)."""
        try:
            return evaluate_pair(pair, mode, score, sample_rate, transposed)
        except VoiceconvError as exc:
            return str(exc)

    # Files are measured several at once, each with its analyses (converted, reference, the
    # source on each of harvest's grids) in threads of their own (pyworld releases the GIL).
    workers = min(len(pairs), max(1, (os.cpu_count() or 1) // 2))
    results = list(tqdm(in_order(measure, pairs, workers),
                        total=len(pairs), desc="eval", unit="file", disable=not progress))
    failed = unpaired + [{"file": p.key, "reason": r}
                         for p, r in zip(pairs, results, strict=True) if isinstance(r, str)]
    pairs = [p for p, r in zip(pairs, results, strict=True) if not isinstance(r, str)]
    rows = [r for r in results if not isinstance(r, str)]
    if not rows:
        raise VoiceconvError(f"none of the {len(failed)} pairs could be measured; the first: "
                             f"{failed[0]['reason']}")
    speaker, speaker_note = speaker_similarities(pairs, voice_files(target_voice),
                                                 voice_files(source_voice))
    natural, natural_note = naturalness(pairs)
    for row, sims, mos in zip(rows, speaker, natural, strict=True):
        row.update(sims)
        row.update(mos)
    summary: dict[str, Any] = {k: _average([r.get(k, math.nan) for r in rows], np.mean)
                               for k in SUMMARY_KEYS}
    # One bad file moves a mean; the median of the files is what a song set is judged by.
    summary["median_of_files"] = {k: _average([r.get(k, math.nan) for r in rows], np.median)
                                  for k in SUMMARY_KEYS}
    summary.update({"n_files": len(rows), "failed": failed,
                    "mode": mode, "frame_period_ms": FRAME_PERIOD_MS,
                    "mcd_silent_frames_excluded": int(sum(r["mcd_silent_excluded"]
                                                          for r in rows)),
                    "f0_against": sorted({r["f0_against"] for r in rows}),
                    "notes": [n for n in {speaker_note, natural_note,
                                          *(r["f0_note"] for r in rows)} if n]})
    write_text_atomic(out / "metrics.json", json.dumps(_jsonable(summary), indent=2) + "\n")
    _write_csv(out / "metrics.csv", rows)
    write_report(out / "report.html", pairs, rows, summary, sample_rate, summary_lines(summary))
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """What a person reads first: melody, voice (to the target, to the source, the gain) and
    naturalness (converted beside the source), one line each, as means over the files; for
    several files, a fourth line with the same figures as medians of the files."""
    def n(key: str, values: dict[str, Any] = summary) -> str:
        return format_number(values[key], "n/a")

    lines = [f"melody: f0_median_cents={n('f0_median_cents')}  "
             f"gross_pitch_error={n('gross_pitch_error')} (where the source F0 is stable: "
             f"{n('gross_pitch_error_stable')})  f0_rmse_cents={n('f0_rmse_cents')}  "
             f"mcd_db={n('mcd_db')}",
             f"voice: similarity to target={n('speaker_sim_target')} (source audio "
             f"{n('speaker_sim_target_unconverted')}, gain {n('speaker_sim_gain')}), to source="
             f"{n('speaker_sim_source')}",
             f"naturalness: DNSMOS OVRL={n('dnsmos_ovrl')} (source {n('dnsmos_ovrl_source')}), "
             f"SIG={n('dnsmos_sig')}, BAK={n('dnsmos_bak')}"]
    median = summary["median_of_files"]
    if summary["n_files"] > 1:
        lines.append(f"median of {summary['n_files']} files: "
                     f"f0_median_cents={n('f0_median_cents', median)}  "
                     f"gross_pitch_error={n('gross_pitch_error', median)} "
                     f"({n('gross_pitch_error_stable', median)})  "
                     f"similarity to target={n('speaker_sim_target', median)}, to source="
                     f"{n('speaker_sim_source', median)}  "
                     f"DNSMOS OVRL={n('dnsmos_ovrl', median)}")
    return lines


def _average(values: list[float], average: Callable[[list[float]], Any]) -> float:
    """`average` of the finite values; NaN when there are none (never a perfect score)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(average(finite)) if finite else math.nan


def _jsonable(value: Any) -> Any:
    """NaN becomes null: JSON has no NaN, and a missing number must not read as zero."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = [k for k in rows[0] if not k.startswith("_")]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None, prog: str = "voiceconv eval") -> int:
    parser = ArgumentParser(prog=prog, description="Measure converted singing against "
                                     "references; writes metrics.json, metrics.csv, report.html.")
    parser.add_argument("--converted", type=Path, required=True,
                        help="folder of converted files (searched recursively)")
    parser.add_argument("--reference", type=Path,
                        help="folder of references, each named as its converted file "
                        "(relative path, extension ignored); in nonparallel mode optional "
                        "with --target-voice")
    parser.add_argument("--source", type=Path, help="the unconverted inputs (F0 and speaker)")
    parser.add_argument("--score", type=Path, help="manifest.jsonl with notes per file")
    parser.add_argument("--mode", choices=("aligned", "dtw", "nonparallel"), default="aligned",
                        help="aligned: sample-aligned parallel data; dtw: unaligned pairs of "
                        "the same song; nonparallel: the reference is another song of the "
                        "target singer (no MCD; F0 against --source; speaker similarity)")
    parser.add_argument("--sample-rate", type=int, default=16000,
                        help="analysis rate (default 16000: all files are compared at it)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for metrics.json, metrics.csv and report.html")
    parser.add_argument("--transposed", action="store_true",
                        help="the conversion was key-shifted (convert --key): measure F0 after "
                        "removing the whole-semitone shift that best explains it, reported as "
                        "f0_key_semitones")
    parser.add_argument("--target-voice", type=Path,
                        help="recordings of the target singer (e.g. its training songs): "
                        "speaker similarity to their centroid (default: to the references)")
    parser.add_argument("--source-voice", type=Path,
                        help="recordings of the source singer: similarity to the source is to "
                        "their centroid (default: to the unconverted sources)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    summary = evaluate(args.converted, args.reference, args.out, args.source, args.score,
                       args.mode, args.sample_rate, not args.quiet, args.transposed,
                       args.target_voice, args.source_voice)
    for line in summary_lines(summary):
        print(line)
    for note in summary["notes"]:
        print(note)
    print(f"{summary['n_files']} files; report: {args.out / 'report.html'}")
    for failure in summary["failed"]:
        print(f"failed: {failure['reason']}", file=sys.stderr)
    return 1 if summary["failed"] else 0
