"""Decoding, down-mixing, resampling and writing audio. All audio I/O goes through soundfile."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voiceconv.core.errors import AudioDecodeError
from voiceconv.core.fileio import atomic_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc")


@dataclass(frozen=True)
class SourceAudio:
    """A decoded file: `samples` is (frames, channels) float32 at the file's own rate."""

    samples: np.ndarray
    sample_rate: int
    format: str
    subtype: str

    @property
    def channels(self) -> int:
        return self.samples.shape[1]

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / self.sample_rate


def why_not_a_file(path: Path) -> str | None:
    """A human-readable reason why `path` cannot be an audio file, or None if it may be."""
    if path.is_symlink() and not path.exists():
        return f"dangling symlink (points to {os.readlink(path)})"
    if path.is_dir():
        return "is a directory, not an audio file"
    if not path.exists():
        return "file does not exist"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    return None


def decode(path: str | os.PathLike, max_duration_s: float | None = None) -> SourceAudio:
    """Decode any file soundfile can read into float32 (frames, channels).

    Raises AudioDecodeError with a one-line reason for anything unreadable.
    """
    path = Path(path)
    if reason := why_not_a_file(path):
        raise AudioDecodeError(reason)
    try:
        with sf.SoundFile(path) as fh:
            if fh.samplerate <= 0 or fh.channels <= 0:
                raise AudioDecodeError(f"invalid header ({fh.samplerate} Hz, {fh.channels} ch)")
            if max_duration_s is not None and fh.frames > max_duration_s * fh.samplerate:
                length = human_duration(fh.frames / fh.samplerate)
                raise AudioDecodeError(f"too long ({length}, limit {human_duration(max_duration_s)}"
                                       "); split it first")
            samples = fh.read(dtype="float32", always_2d=True)
            info = (fh.samplerate, fh.format, fh.subtype)
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise AudioDecodeError(f"cannot decode as audio: {short_reason(exc)}") from exc
    if samples.shape[0] == 0:
        raise AudioDecodeError("no audio frames (header only or truncated)")
    return SourceAudio(samples, *info)


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.2f} h"


def audio_info(path: Path, what: str) -> sf._SoundFileInfo:
    """The header of an audio file that is about to be read, or one error naming `what` the
    file is and why it cannot be read."""
    if reason := why_not_a_file(path):
        raise AudioDecodeError(f"{what} {path}: {reason}")
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioDecodeError(f"{what} {path}: cannot decode as audio: "
                               f"{short_reason(exc)}") from exc


def short_reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    # libsndfile prefixes the (possibly long) path: keep only its explanation.
    return text.split(": ", 1)[-1] if "Error opening" in text else text


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,): the channel average, which keeps a centred voice's level."""
    if samples.shape[1] == 1:
        return samples[:, 0].copy()
    return samples.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr's very-high-quality filter (no-op at equal rates)."""
    if from_rate == to_rate:
        return x.astype(np.float32, copy=False)
    return soxr.resample(x, from_rate, to_rate, quality="VHQ").astype(np.float32, copy=False)


def load_mono(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Decode, down-mix and resample: the one-call path for evaluation. An unreadable file
    raises AudioDecodeError naming it (evaluations read many files at once)."""
    try:
        src = decode(path)
    except AudioDecodeError as exc:
        raise AudioDecodeError(f"{path}: {exc}") from None
    return resample(to_mono(src.samples), src.sample_rate, sample_rate)


def write_audio(path: str | os.PathLike, x: np.ndarray, sample_rate: int,
                subtype: str = "FLOAT") -> None:
    """Write atomically; the format follows the extension of `path`."""
    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower(), "WAV")
    with atomic_path(path) as tmp:
        sf.write(tmp, x, sample_rate, format=fmt, subtype=subtype)


def read_audio(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Read a mono file written by this project (float32), optionally a sample range."""
    x, _ = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=False)
    return x
