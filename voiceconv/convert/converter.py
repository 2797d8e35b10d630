"""Converting one vocal stem: streamed decode -> chunks cut at silences -> F0 and mel per chunk
-> generator -> vocoder with the (key-shifted) source F0 -> cross-faded join -> silence gate
and loudness match -> back to the input's rate and channel layout, written atomically.

Memory is bounded by two mono copies of the song at the model rate (5 MB per minute each)
plus one chunk's features: a 30-minute stem converts in well under 2 GB.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import torch

from voiceconv.core.audio import audio_info, short_reason, why_not_a_file
from voiceconv.core.errors import AudioDecodeError, VoiceconvError
from voiceconv.core.features import LogMelSpectrogram, extract_f0
from voiceconv.core.fileio import atomic_path
from voiceconv.core.loudness import MIN_LOUDNESS_DURATION_S, integrated_loudness, normalize_loudness
from voiceconv.core.threads import in_order
from voiceconv.models.pair import PairConversion
from voiceconv.models.vocoders import Vocoder
from voiceconv.models.vocoders.base import CrossfadeJoin
from voiceconv.models.vocoders.f0_response import require_f0_control

BLOCK = 1 << 16  # samples per block when streaming files in and out
SILENCE_DBFS = -60.0  # frames below this (or 50 dB under the loud frames) are silence
DC_OFFSET_FLOOR = 1e-4  # -80 dBFS: a smaller DC offset is 20 dB under any silence threshold
TRUE_PEAK_CEILING_DBTP = -1.0
MAX_KEY = 24  # semitones either way
# Silent runs this long are skipped by F0 analysis and rendering (the gate mutes them anyway),
# all but this much at each end next to sound.
LONG_SILENCE_S = 1.0
SILENCE_MARGIN_S = 0.1


@dataclass(frozen=True)
class ConvertSettings:
    direction: str = "a2b"
    key: float | str = 0.0  # semitones, or "auto"
    f0_method: str | None = None  # None: the one the model's features were made with
    max_chunk_s: float = 20.0  # chunks are cut at the quietest point between min and max
    min_chunk_s: float = 5.0
    context_s: float = 0.5  # converted on each side of a chunk and dropped
    crossfade_s: float = 0.02  # half-width of the cross-fade at each chunk seam
    # Render the source's own mel (no conversion) with the same vocoder, F0 and key: what the
    # vocoder alone does to a song, the baseline a conversion's quality is judged against.
    copy_synthesis: bool = False
    # > 0: each converted frame becomes the mean of its match_k nearest frames of the target
    # singer's training songs (PairConversion.convert).
    match_k: int = 0


@dataclass
class Converted:
    path: Path
    duration_s: float
    key: float
    seconds: dict[str, float]  # time per stage (stages overlap in threads: see StageTimer)
    wall_s: float  # the whole conversion

    @property
    def realtime_factor(self) -> float:
        return self.duration_s / max(self.wall_s, 1e-9)


@dataclass
class Chunk:
    start: int  # frames, the part this chunk contributes
    stop: int
    silent: bool

    def with_context(self, context: int, total: int) -> tuple[int, int]:
        """The frames worked on for this chunk: `context` more on each side, within the song."""
        return max(0, self.start - context), min(total, self.stop + context)


class StageTimer:
    """Seconds spent per named stage: `with timer("f0"): ...`. Thread-safe; where chunks are
    worked on in several threads at once, a stage's seconds add up over the threads, so
    the stages can sum to more than the wall-clock time."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            with self.lock:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0


def source_f0_range(model: PairConversion, direction: str) -> dict[str, float]:
    """F0 search range for the source singer: their sung range in training (5th-95th
    percentile) widened by an octave each way, within the features' own range. Harvest
    spends most of its time on the lowest candidate frequencies, so a high voice analyses
    2-3x faster (benchmarks/convert.py); an unknown range keeps the features' range."""
    config = model.feature_config
    percentiles = model.singer_stats["a" if direction == "a2b" else "b"]["f0_percentiles_hz"]
    if percentiles.get("p5") is None or percentiles.get("p95") is None:
        return {}
    return {"f0_floor": max(config.f0_floor, percentiles["p5"] / 2),
            "f0_ceil": min(config.f0_ceil, percentiles["p95"] * 2)}


class Converter:
    """A fitted model and a vocoder, ready to convert any number of stems."""

    def __init__(self, model: PairConversion, vocoder: Vocoder, settings: ConvertSettings,
                 device: torch.device | str = "cpu") -> None:
        if settings.direction not in ("a2b", "b2a"):
            raise VoiceconvError(f"direction must be a2b or b2a (got {settings.direction!r})")
        model_config = model.feature_config
        if model_config is None:
            raise VoiceconvError("this model was never fitted (no feature config inside)")
        vocoder.require_features(model_config, "model")
        if settings.key != "auto" and not (isinstance(settings.key, (int, float))
                                           and -MAX_KEY <= settings.key <= MAX_KEY):
            raise VoiceconvError(f"key must be 'auto' or semitones in [-{MAX_KEY}, {MAX_KEY}] "
                                 f"(got {settings.key!r})")
        # A model that converts envelopes moves the harmonics in the mel by the key itself,
        # so any vocoder sings it; otherwise only the F0 moves, and the vocoder must follow it.
        if settings.key != 0 and (settings.copy_synthesis or not model.spectral_envelope):
            require_f0_control(vocoder)
        if settings.match_k and not settings.copy_synthesis:
            model.frame_bank("b" if settings.direction == "a2b" else "a", settings.match_k)
        self.model, self.vocoder = model.to(device).eval(), vocoder.to(device).eval()
        self.settings = settings
        self.config = model_config.replace(f0_method=settings.f0_method or
                                           model_config.f0_method,
                                           **source_f0_range(model, settings.direction))
        self.mel = LogMelSpectrogram(self.config)
        self.target_stats = model.singer_stats["b" if settings.direction == "a2b" else "a"]
        # Chunks are independent until they are joined: F0 analysis (pyworld releases the GIL
        # for much of it) runs on several chunks at once, and so does rendering with a vocoder
        # that renders chunks in threads (WORLD). torch.get_num_threads() is what the CLI
        # gives each job.
        self.workers = torch.get_num_threads()
        # The model sees one F0 per frame; a vocoder that follows a finer track gets it.
        self.f0_subframes = vocoder.f0_subframes if vocoder.uses_f0 else 1

    # -- the steps, each usable on its own -----------------------------------------------------

    def read_mono(self, path: str | Path) -> tuple[np.ndarray, Any]:
        """Stream-decode `path` into mono float32 at the model rate, without a DC offset (see
        `convert_array`); refuse what is unusable."""
        path = Path(path)
        if reason := why_not_a_file(path):
            raise AudioDecodeError(reason)
        try:
            info = sf.info(str(path))
            if info.samplerate <= 0 or info.channels <= 0 or info.frames <= 0:
                raise AudioDecodeError("no audio frames (empty or truncated)")
            length = round(info.frames * self.config.sample_rate / info.samplerate)
            audio = np.zeros(length, np.float32)  # filled as decoded: one copy of the song
            self._decode_into(audio, path, info)
            if offset := dc_offset(audio):
                # Once more, with the offset taken out before resampling: taken out after
                # it, the resampler's start and end would leave a step at each end.
                self._decode_into(audio, path, info, offset)
        except AudioDecodeError:
            raise
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
            raise AudioDecodeError(f"cannot decode as audio: {short_reason(exc)}") from exc
        if audio.shape[0] < 4 * self.config.hop_length:
            raise AudioDecodeError(f"too short to convert ({info.duration * 1000:.0f} ms)")
        return audio, info

    def _decode_into(self, audio: np.ndarray, path: Path, info: Any, offset: float = 0.0) -> None:
        filled = 0
        with sf.SoundFile(str(path)) as fh:
            for block in resampled_blocks(self._decoded_mono(fh, offset), info.samplerate,
                                          self.config.sample_rate, audio.shape[0]):
                audio[filled: filled + block.shape[0]] = block
                filled += block.shape[0]

    @staticmethod
    def _decoded_mono(fh: sf.SoundFile, offset: float) -> Iterator[np.ndarray]:
        for block in fh.blocks(BLOCK, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                raise AudioDecodeError("contains NaN or infinite samples")
            mono = block.mean(axis=1, dtype=np.float32)
            yield mono - np.float32(offset) if offset else mono

    def frame_levels_db(self, audio: np.ndarray) -> np.ndarray:
        """Mean-square level of each frame in dB (block by block: no float64 copy of the song)."""
        hop = self.config.hop_length
        frames = audio[: audio.shape[0] // hop * hop].reshape(-1, hop)
        per_block = BLOCK // hop
        levels = [np.mean(np.square(frames[i: i + per_block], dtype=np.float64), axis=1)
                  for i in range(0, frames.shape[0], per_block)]
        return 10 * np.log10(np.concatenate(levels) + 1e-12)

    def silent_frames(self, levels_db: np.ndarray) -> np.ndarray:
        threshold = max(SILENCE_DBFS, float(np.percentile(levels_db, 95)) - 50.0)
        return levels_db < threshold

    def plan_chunks(self, levels_db: np.ndarray, silent: np.ndarray) -> list[Chunk]:
        """Long silent stretches (a vocal stem's instrumental breaks) become silent chunks,
        neither analysed nor rendered; the sound between them is cut where the (smoothed)
        level is lowest between min and max chunk length."""
        fps = self.config.sample_rate / self.config.hop_length
        lo, hi = (max(1, int(s * fps)) for s in (self.settings.min_chunk_s,
                                                   self.settings.max_chunk_s))
        smooth = np.convolve(levels_db, np.ones(9) / 9, mode="same")
        chunks = []
        for start, stop, is_silence in silent_stretches(silent, round(LONG_SILENCE_S * fps),
                                                         round(SILENCE_MARGIN_S * fps)):
            if is_silence:
                chunks.append(Chunk(start, stop, True))
                continue
            cuts = [start]
            while stop - cuts[-1] > hi:
                window = smooth[cuts[-1] + lo: cuts[-1] + hi]
                cuts.append(cuts[-1] + lo + int(np.argmin(window)))
            cuts.append(stop)
            chunks += [Chunk(a, b, bool(silent[a:b].all())) for a, b in itertools.pairwise(cuts)]
        return chunks

    def context_frames(self) -> int:
        fps = self.config.sample_rate / self.config.hop_length
        return max(self.vocoder.context_frames, math.ceil(self.settings.context_s * fps))

    def source_f0(self, audio: np.ndarray, chunks: list[Chunk],
                  progress: Callable[[float], None]) -> np.ndarray:
        """F0 of the whole stem, analysed chunk by chunk with context: `f0_subframes` values
        per frame (frame k's own at k * f0_subframes)."""
        hop, context, per_frame = self.config.hop_length, self.context_frames(), self.f0_subframes
        total = chunks[-1].stop
        f0 = np.zeros(total * per_frame, np.float32)

        def analyse(chunk: Chunk) -> np.ndarray | None:
            if chunk.silent:
                return None
            left, right = chunk.with_context(context, total)
            region = extract_f0(audio[left * hop: right * hop], self.config, per_frame)
            return region[(chunk.start - left) * per_frame: (chunk.stop - left) * per_frame]

        for chunk, region in zip(chunks, in_order(analyse, chunks, self.workers), strict=True):
            if region is not None:
                f0[chunk.start * per_frame: chunk.stop * per_frame] = region
            progress(0.5 * (chunk.stop - chunk.start) * hop / self.config.sample_rate)
        return f0

    def choose_key(self, f0: np.ndarray) -> float:
        """The whole-semitone shift that puts most of the source's sung range inside the target
        singer's 5th-95th percentile range; among equally good ones, the one that best matches
        the median pitches."""
        voiced = f0[f0 > 0]
        p5, p95 = self.target_stats["f0_percentiles_hz"]["p5"], \
            self.target_stats["f0_percentiles_hz"]["p95"]
        if voiced.size == 0 or p5 is None or p95 is None:
            return 0.0
        semitones = 12 * np.log2(voiced)
        lo, hi = 12 * np.log2(p5), 12 * np.log2(p95)
        median_shift = 12 * math.log2(self.target_stats["f0_percentiles_hz"]["p50"]) - \
            float(np.median(semitones))

        def cost(k: int) -> tuple[float, float]:
            shifted = semitones + k
            outside = np.maximum(lo - shifted, 0) + np.maximum(shifted - hi, 0)
            return round(float(outside.mean()), 2), abs(k - median_shift)

        return float(min(range(-MAX_KEY, MAX_KEY + 1), key=cost))

    @torch.no_grad()
    def render(self, audio: np.ndarray, f0: np.ndarray, chunks: list[Chunk], key: float,
               progress: Callable[[float], None], timer: StageTimer) -> np.ndarray:
        hop, context, total = self.config.hop_length, self.context_frames(), chunks[-1].stop
        fade = max(1, round(self.settings.crossfade_s * self.config.sample_rate))
        joiner = CrossfadeJoin(torch.zeros(total * hop), fade)
        ratio = 2.0 ** (key / 12)
        vocoder, per_frame = self.vocoder, self.f0_subframes

        @torch.no_grad()
        def render_chunk(chunk: Chunk) -> torch.Tensor:
            """One chunk with its context; may run in a worker thread."""
            left, right = chunk.with_context(context, total)
            if chunk.silent:
                return torch.zeros((right - left) * hop)
            with timer("mel"):
                mel = self.mel(torch.from_numpy(audio[left * hop: right * hop])[None])
            track = torch.from_numpy(f0[left * per_frame: right * per_frame])[None]
            with timer("generator"):
                converted = mel if self.settings.copy_synthesis else self.model.convert(
                    mel, self.settings.direction, track[:, ::per_frame], key,
                    self.settings.match_k)
            with timer("vocoder"):
                return vocoder.render(converted, track * ratio)[0]

        workers = self.workers if vocoder.renders_chunks_in_threads else 1
        for chunk, out in zip(chunks, in_order(render_chunk, chunks, workers), strict=True):
            left, _ = chunk.with_context(context, total)
            joiner.add(chunk.start * hop, chunk.stop * hop, out, left * hop)
            progress(0.5 * (chunk.stop - chunk.start) * hop / self.config.sample_rate)
        return joiner.result().numpy()

    def gate_silence(self, converted: np.ndarray, silent: np.ndarray) -> np.ndarray:
        """Mute what the source has as silence, with ~50 ms ramps (no clicks at the edges).
        In place, block by block."""
        hop = self.config.hop_length
        dilate = 4  # frames kept on each side of sound: breaths, reverb tails, soft onsets
        sound = np.convolve((~silent).astype(float), np.ones(2 * dilate + 1), mode="same") > 0
        gain = np.convolve(sound.astype(float), np.ones(5) / 5, mode="same")
        centres = (np.arange(gain.shape[0]) + 0.5) * hop
        for start in range(0, converted.shape[0], BLOCK):
            stop = min(start + BLOCK, converted.shape[0])
            converted[start:stop] *= np.interp(np.arange(start, stop), centres, gain).astype(
                np.float32)
        return converted

    def match_loudness(self, converted: np.ndarray, source: np.ndarray) -> np.ndarray:
        """The source stem's integrated loudness, never above -1 dBTP."""
        rate = self.config.sample_rate
        if converted.shape[0] < MIN_LOUDNESS_DURATION_S * rate:
            return converted
        target = integrated_loudness(source, rate)
        if not np.isfinite(target) or not np.isfinite(integrated_loudness(converted, rate)):
            return converted
        return normalize_loudness(converted, rate, target, TRUE_PEAK_CEILING_DBTP).audio

    # -- the whole file ---------------------------------------------------------------------------

    def convert_array(self, audio: np.ndarray, progress: Callable[[float], None] = lambda s: None,
                      timer: StageTimer | None = None) -> tuple[np.ndarray, float]:
        """Mono audio at the model rate -> (converted audio of the same length, key used).

        A DC offset (a cheap interface's) is taken out first, as prep took it out of the
        training audio: left in, it is a tone at 0 Hz in the model's lowest mel bands, and it
        keeps every pause from counting as silence."""
        timer = timer or StageTimer()
        if offset := dc_offset(audio):
            audio = audio - np.float32(offset)
        levels = self.frame_levels_db(audio)
        if levels.max() < SILENCE_DBFS:
            raise AudioDecodeError(f"silent (no frame above {SILENCE_DBFS:.0f} dBFS)")
        silent = self.silent_frames(levels)
        chunks = self.plan_chunks(levels, silent)
        with timer("f0"):
            f0 = self.source_f0(audio, chunks, progress)
        key = self.choose_key(f0[::self.f0_subframes]) if self.settings.key == "auto" \
            else float(self.settings.key)
        converted = self.render(audio, f0, chunks, key, progress, timer)
        converted = self.gate_silence(converted, silent)
        converted = _fit_length(converted, audio.shape[0])
        return self.match_loudness(converted, audio), key

    def convert_file(self, path: Path, out_path: Path, fmt: str = "wav",
                     accompaniment: Path | None = None, mix_path: Path | None = None,
                     progress: Callable[[float], None] = lambda s: None) -> Converted:
        """Convert one stem to `out_path` (and, with an accompaniment, the mix to `mix_path`)."""
        timer, t0 = StageTimer(), time.perf_counter()
        with timer("read"):
            audio, info = self.read_mono(path)
        converted, key = self.convert_array(audio, progress, timer)
        del audio
        with timer("write"):
            try:
                write_like(out_path, converted, self.config.sample_rate, info.samplerate,
                           info.channels, info.frames, fmt)
            except OSError as exc:  # a full disk, or a folder where the file would go
                raise VoiceconvError(f"cannot write {out_path}: {exc.strerror or exc}") from exc
            if accompaniment is not None:
                mix_with_accompaniment(converted, self.config.sample_rate, accompaniment,
                                       mix_path, fmt)
        return Converted(out_path, info.duration, key, timer.seconds, time.perf_counter() - t0)


def dc_offset(audio: np.ndarray) -> float:
    """The stem's DC offset, or 0 where it is too small to matter."""
    offset = float(np.mean(audio, dtype=np.float64))
    return offset if abs(offset) > DC_OFFSET_FLOOR else 0.0


def silent_stretches(silent: np.ndarray, min_frames: int,
                     margin: int) -> list[tuple[int, int, bool]]:
    """The frames cut into consecutive (start, stop, is_silence) spans: each silent run of at
    least `min_frames` (less `margin` frames at an end that meets sound, so the sound keeps
    its fades and reverb tails) is one silent span; the rest, sound and short pauses, lie
    between them."""
    total = silent.shape[0]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(np.int8), [0]]))).tolist()
    spans, position = [], 0
    for begin, end in zip(edges[::2], edges[1::2], strict=True):
        if end - begin < max(min_frames, 2 * margin + 1):
            continue
        start = begin + margin if begin > 0 else 0
        stop = end - margin if end < total else total
        if start > position:
            spans.append((position, start, False))
        spans.append((start, stop, True))
        position = stop
    if position < total:
        spans.append((position, total, False))
    return spans


def _fit_length(x: np.ndarray, length: int) -> np.ndarray:
    if x.shape[0] >= length:
        return x[:length]
    return np.concatenate([x, np.zeros(length - x.shape[0], x.dtype)])


def resampled_blocks(blocks: np.ndarray | Iterator[np.ndarray], from_rate: int, to_rate: int,
                     length: int) -> Iterator[np.ndarray]:
    """An array, or an iterator of blocks, resampled block by block (bounded memory):
    exactly `length` samples in all."""
    if isinstance(blocks, np.ndarray):
        x = blocks
        blocks = (x[start: start + BLOCK] for start in range(0, x.shape[0], BLOCK))
    resampler = None if from_rate == to_rate else soxr.ResampleStream(
        from_rate, to_rate, 1, dtype="float32", quality="VHQ")
    written = 0
    for block in blocks:
        if resampler is not None:
            block = resampler.resample_chunk(block)
        block = block[: length - written]
        written += block.shape[0]
        yield block
    if resampler is not None and written < length:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)[: length - written]
        written += tail.shape[0]
        yield tail
    if written < length:
        yield np.zeros(length - written, np.float32)


SUBTYPES = {"wav": "PCM_24", "flac": "PCM_24"}


def write_like(path: Path, mono: np.ndarray, rate: int, out_rate: int, channels: int,
               frames: int, fmt: str) -> None:
    """Write `mono` at `out_rate` with `channels` identical channels and exactly `frames` frames."""
    with atomic_path(path) as tmp, sf.SoundFile(str(tmp), "w", out_rate, channels,
                                                 SUBTYPES[fmt], format=fmt.upper()) as fh:
        for block in resampled_blocks(mono, rate, out_rate, frames):
            fh.write(np.repeat(block[:, None], channels, axis=1))


class BlockFeed:
    """Hands out exactly n samples at a time from an iterator of variable-sized blocks."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self.blocks, self.buffer = blocks, np.zeros((0,), np.float32)

    def take(self, n: int) -> np.ndarray:
        while self.buffer.shape[0] < n:
            block = next(self.blocks, None)
            if block is None:
                break
            self.buffer = np.concatenate([self.buffer, block])
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return _fit_length(out, n) if out.shape[0] < n else out


def mix_with_accompaniment(vocals: np.ndarray, rate: int, accompaniment: Path, out_path: Path,
                           fmt: str = "wav") -> float:
    """Write vocals (mono, at `rate`) + accompaniment at the accompaniment's rate and channels,
    scaled down as a whole where needed so the mix's true peak stays under -1 dBTP. Streamed:
    one pass measures the peak, one writes. Returns the gain applied (dB)."""
    from voiceconv.core.loudness import true_peak_dbtp

    info = audio_info(accompaniment, "accompaniment")
    length = max(info.frames, math.ceil(vocals.shape[0] * info.samplerate / rate))

    def mix_blocks() -> Iterator[np.ndarray]:
        voice = BlockFeed(resampled_blocks(vocals, rate, info.samplerate, length))
        with sf.SoundFile(str(accompaniment)) as fh:
            for start in range(0, length, BLOCK):
                n = min(BLOCK, length - start)
                music = fh.read(n, dtype="float32", always_2d=True)
                if not np.isfinite(music).all():
                    raise AudioDecodeError(f"accompaniment {accompaniment}: NaN or infinite "
                                           "samples")
                music = np.concatenate([music, np.zeros((n - music.shape[0], info.channels),
                                                        np.float32)])
                yield music + voice.take(n)[:, None]

    peak = max(true_peak_dbtp(block[:, c], info.samplerate)
               for block in mix_blocks() for c in range(info.channels))
    gain_db = min(0.0, TRUE_PEAK_CEILING_DBTP - peak)
    gain = np.float32(10 ** (gain_db / 20))
    with atomic_path(out_path) as tmp, sf.SoundFile(str(tmp), "w", info.samplerate, info.channels,
                                                     SUBTYPES[fmt], format=fmt.upper()) as fh:
        for block in mix_blocks():
            fh.write(block * gain)
    return gain_db
