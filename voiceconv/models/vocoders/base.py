"""The vocoder protocol: (mel, f0) -> waveform at the feature sample rate, in bounded memory.

Every vocoder is a `Vocoder`: it names itself, holds the feature config it was made for (and
refuses mels made with another), and renders long inputs chunk by chunk with enough context
on both sides that the chunks join without a seam.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Literal

import torch

from voiceconv.core.cpu import bf16_is_fast
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import F0_FIELDS, FeatureConfig
from voiceconv.core.threads import in_order
from voiceconv.core.vocoder_names import PRECISIONS


class Vocoder(torch.nn.Module):
    """mel: (B, n_mels, T) natural-log magnitude, f0: (B, T) Hz (0 = unvoiced)
    -> audio: (B, T * hop) at `feature_config.sample_rate`."""

    name = "vocoder"
    # Frames of context rendered on each side of a chunk and then dropped: at least the
    # receptive field, so chunked output equals one-shot output.
    context_frames = 32
    crossfade_frames = 2  # half-width of the cross-fade at each chunk boundary
    uses_f0 = False  # whether the pitch comes from `f0` (True) or from the mel's harmonics
    # How many F0 values per frame `synthesise` follows when given them (f0: (B, T * n));
    # it accepts one per frame as well, which is what `render` passes.
    f0_subframes = 1
    # Render several chunks at once in threads: for single-threaded vocoders that release the
    # GIL (WORLD: numpy and C); torch ops use every core already.
    renders_chunks_in_threads = False
    # Frames per chunk in `render`, each rendered with `context_frames` more on both sides.
    # Every window but the one of an input shorter than a window has the same length, so a
    # neural vocoder sets up its convolutions once, not once per input length.
    chunk_frames = 2048
    # A neural vocoder's arithmetic: "auto" renders in bf16 (autocast) where the device has
    # bf16 units (core.cpu.bf16_is_fast) and in fp32 elsewhere; "fp32" or "bf16" forces one.
    # Vocoders without a network (WORLD, Griffin-Lim) ignore it.
    precision = "auto"

    def __init__(self, feature_config: FeatureConfig) -> None:
        super().__init__()
        self.feature_config = feature_config

    def with_precision(self, precision: str) -> Vocoder:
        if precision not in PRECISIONS:
            raise VoiceconvError(f"precision must be one of {', '.join(PRECISIONS)} "
                                 f"(got {precision!r})")
        self.precision = precision
        return self

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The context a network renders in on `device`: bf16 autocast or nothing."""
        if self.precision == "bf16" or (self.precision == "auto" and bf16_is_fast(device)):
            return torch.autocast(device.type, torch.bfloat16)
        return contextlib.nullcontext()

    def synthesise(self, mel: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def synthesise_chunk(self, mel: torch.Tensor, f0: torch.Tensor, left: int,
                         right: int) -> torch.Tensor:
        """Frames [left, right) of a long input; vocoders whose output depends on what came
        before (the phase of a sine source) override this to look further back. May run in a
        worker thread (see `renders_chunks_in_threads`): it must not change shared state.
        `f0` may hold several values per frame (see `f0_subframes`)."""
        per_frame = f0.shape[-1] // mel.shape[-1]
        return self.synthesise(mel[..., left:right], f0[..., left * per_frame: right * per_frame])

    def require_features(self, config: FeatureConfig, what: str = "features") -> None:
        """Refuse mels made with other settings (how F0 was analysed does not matter here)."""
        self.feature_config.require_same(config, f"vocoder {self.name}", what, ignore=F0_FIELDS)

    @torch.no_grad()
    def render(self, mel: torch.Tensor, f0: torch.Tensor | None = None,
               chunk_frames: int | None | Literal["default"] = "default") -> torch.Tensor:
        """Render in chunks of `chunk_frames` ("default": the vocoder's own; None: in one
        go), each with context. `f0` has one value per frame, or `f0_subframes` per frame."""
        if mel.dim() != 3 or mel.shape[1] != self.feature_config.n_mels:
            raise ValueError(f"mel must be (B, {self.feature_config.n_mels}, T); "
                             f"got {tuple(mel.shape)}")
        if chunk_frames == "default":
            chunk_frames = self.chunk_frames
        # The module's own device; a vocoder holding neither weights nor buffers runs on the mel's.
        device = next(itertools.chain(self.parameters(), self.buffers()), mel).device
        mel = mel.to(device, torch.float32)
        f0 = torch.zeros(mel.shape[0], mel.shape[-1], device=device) if f0 is None else \
            f0.to(device, torch.float32)
        frames, hop = mel.shape[-1], self.feature_config.hop_length
        if f0.shape[-1] % frames:
            raise ValueError(f"f0 must have a whole number of values per frame; got "
                             f"{f0.shape[-1]} for {frames} frames")
        window = None if chunk_frames is None else chunk_frames + 2 * self.context_frames
        if window is None or frames <= window:
            return self.synthesise(mel, f0).cpu()
        # Chunks overlap by 2 * fade samples and are cross-faded (weighted overlap-add), so
        # vocoders whose output depends on where a chunk starts (pulse phase in WORLD,
        # Griffin-Lim's phase) join smoothly; exact ones (HiFi-GAN) are unchanged by it.
        fade = min(self.crossfade_frames, self.context_frames) * hop
        joiner = CrossfadeJoin(torch.zeros(mel.shape[0], frames * hop), fade)
        bounds = [*range(0, frames, chunk_frames), frames]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < 2 * self.crossfade_frames:
            del bounds[-2]  # a last chunk shorter than its cross-fade joins the one before
        # Each window reaches `context_frames` past its chunk, and further into the input
        # where the chunk lies at an end of it, so that all windows have one length.
        spans = [(start, stop, min(max(0, start - self.context_frames), frames - window))
                 for start, stop in itertools.pairwise(bounds)]

        def render_span(span: tuple[int, int, int]) -> torch.Tensor:
            return self.synthesise_chunk(mel, f0, span[2], span[2] + window).cpu()

        workers = torch.get_num_threads() if self.renders_chunks_in_threads else 1
        for (start, stop, left), audio in zip(spans, in_order(render_span, spans, workers),
                                              strict=True):
            joiner.add(start * hop, stop * hop, audio, left * hop)
        return joiner.result()


class CrossfadeJoin:
    """Joins chunks of a signal with linear cross-fades of 2 * `fade` samples at each seam.

    Chunk k covers [start, stop) of `out`'s last axis plus `fade` samples on each side (where
    the signal has them); the fades of neighbours sum to one, so a signal cut into chunks and
    joined again is unchanged.
    """

    def __init__(self, out: torch.Tensor, fade: int) -> None:
        self.out, self.fade = out, fade
        self.weight = torch.zeros(out.shape[-1])

    def add(self, start: int, stop: int, audio: torch.Tensor, audio_start: int) -> None:
        """`audio`'s first sample is at `audio_start` <= start - fade (or 0); it reaches at
        least stop + fade (or the end)."""
        total, fade = self.out.shape[-1], self.fade
        s0, s1 = max(0, start - fade), min(total, stop + fade)
        w = torch.ones(s1 - s0)
        if start > 0:
            w[: 2 * fade] = torch.linspace(0, 1, 2 * fade + 2)[1:-1]
        if stop < total:
            w[-2 * fade:] = torch.linspace(1, 0, 2 * fade + 2)[1:-1]
        self.out[..., s0:s1] += w * audio[..., s0 - audio_start: s1 - audio_start]
        self.weight[s0:s1] += w

    def result(self) -> torch.Tensor:
        """The joined signal (in place: no second copy of a long output)."""
        return self.out.div_(self.weight.clamp_(min=1e-12))
