"""Objective metrics for converted singing: pure functions with units in their names.

MCD: mel-cepstral distortion in dB between mel-cepstra (order 24, c0 excluded) of the WORLD
spectral envelope, frequency-warped with the all-pass constant alpha that best matches the mel
scale at the sample rate, scaled by 10*sqrt(2)/ln(10). Mel-cepstra are taken of the log *power*
envelope (as SPTK's sp2mc on WORLD's CheapTrick output). Frames silent in both signals are left
out and counted.

F0: deviations in cents over frames voiced in both; voicing errors over all frames. The
reference is audio or a score (notes with start/end ms and Hz). Degenerate input raises
MetricError or gives NaN with a reason, never a quietly perfect score.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pyworld
from scipy.spatial.distance import cdist

from voiceconv.core.errors import VoiceconvError
from voiceconv.core.loudness import integrated_loudness

MCD_CONSTANT = 10 * math.sqrt(2) / math.log(10)
MCEP_ORDER = 24
FRAME_PERIOD_MS = 5.0
SILENCE_DB = 40.0  # frames this far below the loud level (95th percentile) are silence
GROSS_ERROR_CENTS = 50.0  # MIREX's raw-pitch tolerance: a quarter tone, strict for singing
GROSS_ERROR_RATIO = 0.2  # the conventional GPE tolerance of pitch-tracking papers
F0_FLOOR, F0_CEIL = 65.0, 1100.0
# Harvest first decimates its input to about this rate, keeping every r-th sample counted from
# the end. The same audio one sample shorter is therefore analysed on another grid, and that
# alone moves about 2 % of a song's voiced frames by more than GROSS_ERROR_CENTS (twelve songs
# at 16 kHz, 2026-12-07): there the analysis does not define the F0 to that tolerance.
HARVEST_RATE = 8000.0


class MetricError(VoiceconvError):
    """The input cannot be measured (empty, NaN, too short); the message says why."""


def check_audio(x: np.ndarray, sample_rate: int, what: str = "audio") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise MetricError(f"{what}: expected mono samples, got shape {x.shape}")
    if x.size == 0:
        raise MetricError(f"{what}: empty")
    if not np.isfinite(x).all():
        raise MetricError(f"{what}: contains NaN/Inf samples")
    if x.size < 2 * FRAME_PERIOD_MS / 1000 * sample_rate:
        raise MetricError(f"{what}: too short to analyse ({x.size} samples)")
    return x


# -- mel-cepstra ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def mcep_alpha(sample_rate: int) -> float:
    """All-pass constant whose frequency warping best fits the mel scale up to Nyquist
    (least squares on a grid; 0.410 at 16 kHz, 0.455 at 22.05 kHz, 0.554 at 48 kHz)."""
    n = 1000
    hz = np.arange(n) * (sample_rate / 2) / n
    mel = np.log1p(hz / 1000.0)
    mel /= mel[-1]
    omega = np.arange(n) * np.pi / n
    best, best_err = 0.0, np.inf
    for alpha in np.arange(0.0, 1.0, 0.001):
        warped = np.arctan2((1 - alpha**2) * np.sin(omega),
                            (1 + alpha**2) * np.cos(omega) - 2 * alpha)
        warped = np.where(warped < 0, warped + np.pi, warped) / np.pi
        err = np.sqrt(np.mean((mel - warped / warped[-1]) ** 2))
        if err < best_err:
            best, best_err = float(alpha), err
    return round(best, 3)


def warp_cepstrum(c: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """Frequency-warp cepstra (T, M+1) into mel-cepstra (T, order+1) by the all-pass
    recursion (Oppenheim-Johnson), vectorised over frames."""
    beta = 1 - alpha * alpha
    g = np.zeros((c.shape[0], order + 1))
    for i in range(c.shape[1] - 1, -1, -1):
        prev = g.copy()
        g[:, 0] = c[:, i] + alpha * prev[:, 0]
        if order >= 1:
            g[:, 1] = beta * prev[:, 0] + alpha * prev[:, 1]
        for j in range(2, order + 1):
            g[:, j] = prev[:, j - 1] + alpha * (prev[:, j] - g[:, j - 1])
    return g


def envelope_to_mcep(power_envelope: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """(T, fft/2+1) power spectral envelope -> (T, order+1) mel-cepstrum."""
    cepstrum = np.fft.irfft(np.log(np.maximum(power_envelope, 1e-16)), axis=1)
    cepstrum = cepstrum[:, : power_envelope.shape[1]]
    cepstrum[:, 0] /= 2
    return warp_cepstrum(cepstrum, order, alpha)


@dataclass(frozen=True)
class SpectralFrames:
    """WORLD analysis every FRAME_PERIOD_MS: mcep (T, order+1), energy_db (T,), f0 (T,) Hz."""

    mcep: np.ndarray
    energy_db: np.ndarray
    f0: np.ndarray


def f0_track(x: np.ndarray, sample_rate: int, what: str = "audio", grid: int = 0) -> np.ndarray:
    """Harvest F0 in Hz every FRAME_PERIOD_MS (0 = unvoiced), frame k at k * period; `what`
    names the audio in errors. `grid` (below `decimation_grids`): the audio is analysed
    `grid` samples shorter, which puts harvest's decimation on another of its grids."""
    x = check_audio(x, sample_rate, what)
    f0, _ = _harvest(x[: x.shape[0] - grid], sample_rate)
    return f0


def decimation_grids(sample_rate: int) -> int:
    """How many sample grids harvest's decimation can fall on at this rate: 2 at 16 kHz, 1
    (no decimation, every voiced frame stable) under 16 kHz."""
    return max(min(12, int(sample_rate / HARVEST_RATE)), 1)


def stable_frames(tracks: list[np.ndarray]) -> np.ndarray:
    """Frames where the F0 tracks of one audio on each of harvest's grids (`f0_track(...,
    grid=g)`) are all voiced and within GROSS_ERROR_CENTS of the first: where the analysis
    defines its F0 to the gross-error tolerance."""
    n = min(len(t) for t in tracks)
    first = np.asarray(tracks[0][:n], float)
    stable = first > 0
    for track in tracks[1:]:
        other = np.asarray(track[:n], float)
        stable &= other > 0
        cents = 1200 * np.abs(np.log2(np.maximum(other, 1e-3) / np.maximum(first, 1e-3)))
        stable &= cents <= GROSS_ERROR_CENTS
    return stable


def _harvest(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    return pyworld.harvest(x, sample_rate, F0_FLOOR, F0_CEIL, frame_period=FRAME_PERIOD_MS)


def analyse(x: np.ndarray, sample_rate: int, order: int = MCEP_ORDER,
            what: str = "audio") -> SpectralFrames:
    x = check_audio(x, sample_rate, what)
    f0, t = _harvest(x, sample_rate)
    envelope = pyworld.cheaptrick(x, f0, t, sample_rate)
    energy_db = 10 * np.log10(np.maximum(envelope.mean(axis=1), 1e-20))
    mcep = envelope_to_mcep(envelope, order, mcep_alpha(sample_rate))
    return SpectralFrames(mcep, energy_db, f0)


def silent_frames(energy_db: np.ndarray) -> np.ndarray:
    return energy_db < np.percentile(energy_db, 95) - SILENCE_DB


@dataclass(frozen=True)
class MCDResult:
    mcd_db: float
    n_frames: int  # frames (or aligned pairs) measured
    n_silent_excluded: int  # frames silent in both, left out
    path: np.ndarray  # (n, 2) frame pairs (reference, converted) before exclusion
    reason: str = ""


def mel_cepstral_distortion(reference: SpectralFrames, converted: SpectralFrames,
                            mode: str = "aligned") -> MCDResult:
    """MCD in dB. aligned: frame i with frame i (lengths may differ by a few frames);
    dtw: along the dynamic-time-warping path of the mel-cepstra (c1..c24)."""
    if mode == "aligned":
        n = min(reference.mcep.shape[0], converted.mcep.shape[0])
        path = np.stack([np.arange(n), np.arange(n)], axis=1)
    elif mode == "dtw":
        path = dtw_path(reference.mcep[:, 1:], converted.mcep[:, 1:])
    else:
        raise MetricError(f"unknown MCD mode {mode!r}; use 'aligned' or 'dtw'")
    ref_silent, conv_silent = silent_frames(reference.energy_db), silent_frames(converted.energy_db)
    keep = ~(ref_silent[path[:, 0]] & conv_silent[path[:, 1]])
    if not keep.any():
        return MCDResult(math.nan, 0, int(path.shape[0]), path, "every frame silent in both")
    diff = reference.mcep[path[keep, 0], 1:] - converted.mcep[path[keep, 1], 1:]
    per_frame = MCD_CONSTANT * np.sqrt((diff**2).sum(axis=1))
    return MCDResult(float(per_frame.mean()), int(keep.sum()), int((~keep).sum()), path)


def dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimum-cost monotonic alignment of (Ta, D) and (Tb, D) under Euclidean distance."""
    import librosa

    _, warping = librosa.sequence.dtw(C=cdist(a, b), backtrack=True)
    return warping[::-1].astype(np.int64)


# -- F0 ---------------------------------------------------------------------------------------

def f0_from_score(notes: list[list[float]], n_frames: int,
                  frame_period_ms: float = FRAME_PERIOD_MS) -> np.ndarray:
    """F0 in Hz per frame from notes [(start ms, end ms, Hz)], 0 for rests and gaps."""
    f0 = np.zeros(n_frames)
    times = np.arange(n_frames) * frame_period_ms
    for start, end, hz in notes:
        f0[(times >= start) & (times < end)] = hz
    return f0


@dataclass(frozen=True)
class F0Metrics:
    rmse_cents: float
    median_cents: float  # median absolute deviation from the reference
    corr: float  # Pearson correlation of log-F0
    vuv_error: float  # share of frames whose voicing decisions differ
    gross_pitch_error: float  # share of voiced-in-both frames off by > 50 cents
    gross_pitch_error_20pct: float  # the conventional GPE: off by > 20 % (about 316 cents up)
    octave_error_rate: float  # share of voiced-in-both frames within 100 cents of +-k octaves
    n_voiced_both: int
    # gross_pitch_error over the frames whose reference F0 is stable (`stable_frames`), and
    # the share of voiced-in-both frames those are; NaN without `reference_stable`.
    gross_pitch_error_stable: float = math.nan
    stable_reference_share: float = math.nan
    reason: str = ""  # why values are NaN, if they are


def transposition_semitones(reference_hz: np.ndarray, converted_hz: np.ndarray) -> int:
    """The whole number of semitones that best explains converted vs reference F0 (the median
    interval over frames voiced in both): the key a conversion was shifted by."""
    n = min(len(reference_hz), len(converted_hz))
    ref, conv = np.asarray(reference_hz[:n], float), np.asarray(converted_hz[:n], float)
    both = (ref > 0) & (conv > 0)
    if not both.any():
        return 0
    return int(np.round(np.median(12 * np.log2(conv[both] / ref[both]))))


def gross_error_frames(reference_hz: np.ndarray, converted_hz: np.ndarray) -> np.ndarray:
    """Per frame of the shorter track: voiced in both and more than GROSS_ERROR_CENTS apart."""
    n = min(len(reference_hz), len(converted_hz))
    ref, conv = np.asarray(reference_hz[:n], float), np.asarray(converted_hz[:n], float)
    both = (ref > 0) & (conv > 0)
    cents = 1200 * np.abs(np.log2(np.where(both, conv, 1.0) / np.where(both, ref, 1.0)))
    return both & (cents > GROSS_ERROR_CENTS)


def f0_metrics(reference_hz: np.ndarray, converted_hz: np.ndarray,
               reference_stable: np.ndarray | None = None) -> F0Metrics:
    """Compare two F0 tracks on one frame grid (0 = unvoiced); lengths may differ slightly.
    `reference_stable`: the reference's `stable_frames`, for the gross error on those."""
    n = min(len(reference_hz), len(converted_hz))
    if reference_stable is not None:
        n = min(n, len(reference_stable))
    if n == 0:
        raise MetricError("empty F0 track")
    ref, conv = np.asarray(reference_hz[:n], float), np.asarray(converted_hz[:n], float)
    if not (np.isfinite(ref).all() and np.isfinite(conv).all()):
        raise MetricError("F0 track contains NaN/Inf")
    vuv_error = float(np.mean((ref > 0) != (conv > 0)))
    both = (ref > 0) & (conv > 0)
    if not both.any():
        nan = math.nan
        return F0Metrics(rmse_cents=nan, median_cents=nan, corr=nan, vuv_error=vuv_error,
                         gross_pitch_error=nan, gross_pitch_error_20pct=nan,
                         octave_error_rate=nan, n_voiced_both=0, reason="no frame voiced in both")
    cents = 1200 * np.log2(conv[both] / ref[both])
    octaves = np.round(cents / 1200)
    octave_errors = (octaves != 0) & (np.abs(cents - 1200 * octaves) <= 100)
    gross = gross_error_frames(ref, conv)[both]
    gross_stable = stable_share = math.nan
    if reference_stable is not None:
        stable = np.asarray(reference_stable[:n], bool)[both]
        stable_share = float(stable.mean())
        gross_stable = float(gross[stable].mean()) if stable.any() else math.nan
    corr, reason = math.nan, ""
    if both.sum() >= 2 and np.std(ref[both]) > 0 and np.std(conv[both]) > 0:
        corr = float(np.corrcoef(np.log(ref[both]), np.log(conv[both]))[0, 1])
    else:
        reason = "F0 correlation undefined: fewer than two voiced frames or a constant track"
    return F0Metrics(
        rmse_cents=float(np.sqrt(np.mean(cents**2))),
        median_cents=float(np.median(np.abs(cents))),
        corr=corr,
        vuv_error=vuv_error,
        gross_pitch_error=float(np.mean(gross)),
        gross_pitch_error_20pct=float(np.mean(np.abs(2 ** (cents / 1200) - 1)
                                              > GROSS_ERROR_RATIO)),
        octave_error_rate=float(np.mean(octave_errors)),
        n_voiced_both=int(both.sum()),
        reason=reason,
        gross_pitch_error_stable=gross_stable,
        stable_reference_share=stable_share,
    )


# -- level and length -------------------------------------------------------------------------

def loudness_lufs(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness; -inf for silence, NaN (not a number to trust) under 0.4 s."""
    x = check_audio(x, sample_rate)
    try:
        return integrated_loudness(x, sample_rate)
    except ValueError:
        return math.nan


def duration_ratio(converted: np.ndarray, reference: np.ndarray) -> float:
    if len(reference) == 0:
        raise MetricError("reference is empty")
    return len(converted) / len(reference)
