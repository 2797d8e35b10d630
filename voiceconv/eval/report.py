"""A self-contained listening report: one HTML page, audio and figures embedded as data URIs,
so it opens anywhere without a server or a network."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from voiceconv.core.audio import load_mono
from voiceconv.core.fileio import write_text_atomic
from voiceconv.core.metrics import FRAME_PERIOD_MS, gross_error_frames
from voiceconv.core.plotting import format_number, png_bytes, pyplot

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f4f4f4}.file{margin:2em 0;border-top:2px solid #ddd;padding-top:1em}
.players{display:flex;gap:2em}.players div{display:flex;flex-direction:column}
img{max-width:100%}.headline{font-size:1.1em;line-height:1.6}"""


def _audio_uri(audio: np.ndarray, sample_rate: int) -> str:
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format="FLAC")
    return "data:audio/flac;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure_uri(fig: Any) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(fig)).decode()


def _spectrograms(named: list[tuple[str, np.ndarray]], sample_rate: int) -> str:
    import librosa

    fig, axes = pyplot().subplots(1, len(named), figsize=(5 * len(named), 3), squeeze=False)
    for ax, (title, audio) in zip(axes[0], named, strict=True):
        mel = librosa.feature.melspectrogram(y=audio, sr=sample_rate,
                                             n_fft=1024, hop_length=256, n_mels=80)
        ax.imshow(librosa.power_to_db(mel, ref=np.max), origin="lower", aspect="auto",
                  vmin=-80, vmax=0, cmap="magma",
                  extent=(0, mel.shape[1] * 256 / sample_rate, 0, 80))
        ax.set(title=title, xlabel="s", ylabel="mel bin")
    return _figure_uri(fig)


def _f0_plot(curves: dict[str, np.ndarray | None], against: str) -> str:
    """Both F0 curves, and the converted frames that count as gross errors: crosses where the
    reference's F0 is stable, grey dots where harvest gives it two answers."""
    fig, ax = pyplot().subplots(figsize=(10, 2.8))
    reference, converted = curves["f0_reference"], curves["f0_converted"]
    for name, f0 in ((against, reference), ("converted", converted)):
        t = np.arange(len(f0)) * FRAME_PERIOD_MS / 1000
        ax.plot(t, np.where(f0 > 0, f0, np.nan), label=name, lw=1.2)
    gross = gross_error_frames(reference, converted)
    stable = curves.get("reference_stable")
    if stable is None:
        stable = np.ones(len(gross), bool)
    n = min(len(gross), len(stable))
    gross, stable, conv = gross[:n], np.asarray(stable[:n], bool), converted[:n]
    t = np.arange(n) * FRAME_PERIOD_MS / 1000
    for frames, style in ((gross & stable, dict(marker="x", color="crimson", label="gross error")),
                          (gross & ~stable, dict(marker=".", color="grey",
                                                 label="gross, reference F0 not stable"))):
        if frames.any():
            ax.scatter(t[frames], conv[frames], s=12, lw=0.8, zorder=3, **style)
    ax.set(yscale="log", xlabel="s (reference time)", ylabel="F0 Hz", title="F0")
    ax.legend(loc="upper right")
    return _figure_uri(fig)


def _f0_label(row: dict[str, Any]) -> str:
    """What the converted F0 is drawn against; moved by the key it was measured in."""
    key = row.get("f0_key_semitones")
    return f"{row['f0_against']}, moved {key:+g} semitones" if key else row["f0_against"]


def _fmt(value: Any) -> str:
    return html.escape(format_number(value))


def write_report(path: Path, pairs: list[Any], rows: list[dict[str, Any]],
                 summary: dict[str, Any], sample_rate: int, headline: list[str]) -> None:
    """`headline`: what a person reads first (eval's summary lines), above every number."""
    keys = [k for k in summary if isinstance(summary[k], float)]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>voiceconv eval</title>"
             f"<style>{STYLE}</style></head><body><h1>voiceconv evaluation</h1>",
             "<p class='headline'>" + "<br>".join(html.escape(line) for line in headline)
             + "</p>",
             f"<p>{summary['n_files']} files, MCD mode <b>{summary['mode']}</b>, "
             f"{summary['mcd_silent_frames_excluded']} frames silent in both excluded from MCD; "
             f"F0 against {', '.join(summary['f0_against'])}.</p>",
             "<table><tr>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr><tr>"
             + "".join(f"<td>{_fmt(summary[k])}</td>" for k in keys) + "</tr></table>"]
    for note in summary["notes"]:
        parts.append(f"<p><i>{html.escape(note)}</i></p>")
    for pair, row in zip(pairs, rows, strict=True):
        paths = [("source", pair.source)] if pair.source else []
        paths += [("converted", pair.converted)]
        paths += [("reference", pair.reference)] if pair.reference else []
        named = [(title, load_mono(path, sample_rate)) for title, path in paths]
        players = "".join(f"<div><b>{t}</b><audio controls preload='auto' "
                          f"src='{_audio_uri(a, sample_rate)}'></audio></div>" for t, a in named)
        metrics = [k for k in row if not k.startswith("_") and k != "file"]
        parts.append(
            f"<div class='file'><h2>{html.escape(row['file'])}</h2>"
            f"<div class='players'>{players}</div>"
            f"<img alt='mel spectrograms' src='{_spectrograms(named, sample_rate)}'>"
            f"<img alt='F0 curves' src='{_f0_plot(row['_curves'], _f0_label(row))}'>"
            "<table><tr>" + "".join(f"<th>{k}</th>" for k in metrics) + "</tr><tr>"
            + "".join(f"<td>{_fmt(row[k])}</td>" for k in metrics) + "</tr></table></div>")
    parts.append("</body></html>")
    write_text_atomic(path, "\n".join(parts))
