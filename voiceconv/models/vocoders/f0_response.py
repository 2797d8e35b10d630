"""Does a vocoder's pitch follow the F0 it is given? Measured, not declared.

A vocoder can take the F0 input and still ignore it: a neural source-filter HiFi-GAN whose
source-injection layers never learned (the universal HiFi-GAN start, a few fine-tuning steps)
sings at the pitch of the mel's harmonics, so a key shift through it changes nothing. The test:
render the same mel with the F0 given and with that F0 raised, and see how far the output's F0
moves (0 cents: pitch from the mel; the full raise: pitch from F0).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from voiceconv.core.audio import resample
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.features import LogMelSpectrogram
from voiceconv.core.metrics import f0_track

PROBE_CENTS = 200.0
ANALYSIS_RATE = 16000  # the mel stops at fmax = 8 kHz; eval measures F0 at this rate too
TONE_HZ = 220.0


def probe_tone(config: FeatureConfig, seconds: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A steady sung-like tone: (1, n_mels, T) log-mel and its (1, T) F0.

    Harmonics of TONE_HZ up to fmax with a 1/k roll-off (a glottal-like spectrum), so the
    pitch is written into the mel as plainly as it is in real singing.
    """
    t = np.arange(int(seconds * config.sample_rate)) / config.sample_rate
    harmonics = np.arange(1, int(config.fmax // TONE_HZ) + 1)
    audio = (np.sin(2 * np.pi * TONE_HZ * np.outer(harmonics, t)) / harmonics[:, None]).sum(0)
    audio = torch.from_numpy(0.1 * audio / np.abs(audio).max()).float()[None]
    mel = LogMelSpectrogram(config)(audio)
    return mel, torch.full((1, mel.shape[-1]), TONE_HZ)


def f0_response_cents(vocoder: torch.nn.Module, mel: torch.Tensor, f0: torch.Tensor,
                      cents: float = PROBE_CENTS) -> np.ndarray:
    """Per-frame shift (cents) of the output's F0 when `f0` is raised by `cents`, over the
    frames voiced in both renders (empty if none). mel (1, n_mels, T), f0 (1, T) Hz."""
    rate = vocoder.feature_config.sample_rate
    plain, raised = (f0_track(resample(vocoder.render(mel, x)[0].numpy(), rate, ANALYSIS_RATE),
                              ANALYSIS_RATE)
                     for x in (f0, f0 * 2 ** (cents / 1200)))
    n = min(len(plain), len(raised))
    both = (plain[:n] > 0) & (raised[:n] > 0)
    return 1200 * np.log2(raised[:n][both] / plain[:n][both])


def probe_f0_response(vocoder: torch.nn.Module) -> float:
    """Median output shift (cents) for a PROBE_CENTS raise of the F0 on the probe tone; NaN
    when no frame of the two renders is voiced in both (the output has no pitch to move)."""
    shift = f0_response_cents(vocoder, *probe_tone(vocoder.feature_config))
    return float(np.median(shift)) if shift.size else math.nan


def require_f0_control(vocoder: torch.nn.Module) -> None:
    """Refuse, in one line, a vocoder whose pitch does not follow its F0 input (a key shift
    through it would change nothing): declared (`uses_f0`), then measured on the probe tone."""
    if not vocoder.uses_f0:
        raise VoiceconvError(f"a key shift needs an F0-driven vocoder (world); "
                             f"{vocoder.name} takes its pitch from the mel")
    moved = probe_f0_response(vocoder)
    if math.isnan(moved):
        why = "renders the probe tone without pitch"
    elif moved < PROBE_CENTS / 2:
        why = (f"does not (an F0 raised by {PROBE_CENTS:.0f} cents moved its output by "
               f"{moved:.0f})")
    else:
        return
    raise VoiceconvError(f"a key shift needs a vocoder whose pitch follows its F0 input; "
                         f"{vocoder.name} {why}: train it longer, or use world")
