"""The spectral envelope of a log-mel on real singing: it keeps the timbre and drops the pitch,
and the harmonics it drops can be put back at another key."""

from __future__ import annotations

import numpy as np
import pytest
import pyworld
import torch

from tests.conftest import read_excerpt
from voiceconv.core.audio import resample
from voiceconv.core.envelope import SpectralEnvelope, shift_harmonics
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.features import compute_features
from voiceconv.core.melcep import frame_mcd

CONFIG = FeatureConfig()


@pytest.fixture(scope="module")
def same_voice_two_keys():
    """6 s of PJS singing re-synthesised by WORLD at its own pitch and 7 semitones higher,
    from one spectral envelope: the same timbre at two pitches. Features of both."""
    x, sr = read_excerpt("pjs", "pjs001_song.flac", 2.0, 6.0)
    audio = resample(x, sr, CONFIG.sample_rate).astype(np.float64)
    frame_ms = CONFIG.frame_period_ms
    f0, t = pyworld.harvest(audio, CONFIG.sample_rate, frame_period=frame_ms)
    sp = pyworld.cheaptrick(audio, f0, t, CONFIG.sample_rate)
    ap = pyworld.d4c(audio, f0, t, CONFIG.sample_rate)
    renders = [pyworld.synthesize(f0 * 2 ** (k / 12), sp, ap, CONFIG.sample_rate, frame_ms)
               for k in (0, 7)]
    return [compute_features(r.astype(np.float32), CONFIG) for r in renders]


def voiced_mcd(a: np.ndarray, b: np.ndarray, voiced: np.ndarray) -> float:
    mcd = frame_mcd(torch.from_numpy(a), torch.from_numpy(b))
    return float(mcd[torch.from_numpy(voiced)].median())


def test_the_envelope_is_the_same_at_two_pitches_where_the_mel_is_not(same_voice_two_keys):
    low, high = same_voice_two_keys
    n = min(low.mel.shape[1], high.mel.shape[1])
    voiced = (low.f0[:n] > 0) & (high.f0[:n] > 0)
    envelope = SpectralEnvelope(CONFIG)
    env_low = envelope.log_mel(low.mel[:, :n], low.f0[:n])
    env_high = envelope.log_mel(high.mel[:, :n], high.f0[:n])
    mel_distance = voiced_mcd(low.mel[:, :n], high.mel[:, :n], voiced)
    envelope_distance = voiced_mcd(env_low, env_high, voiced)
    print(f"7 semitones apart: mel MCD {mel_distance:.2f} dB, envelope MCD "
          f"{envelope_distance:.2f} dB")
    assert envelope_distance < 0.6 * mel_distance
    assert env_low.shape == low.mel[:, :n].shape and env_low.dtype == np.float32


def test_harmonics_moved_by_a_key_match_the_mel_sung_at_that_key(same_voice_two_keys):
    """Envelope + the low mel's harmonics moved up 7 semitones is the mel sung 7 semitones
    higher, much more closely than with the harmonics left where they were."""
    low, high = same_voice_two_keys
    n = min(low.mel.shape[1], high.mel.shape[1])
    voiced = torch.from_numpy((low.f0[:n] > 0) & (high.f0[:n] > 0))
    envelope = SpectralEnvelope(CONFIG)
    harmonics = torch.from_numpy(low.mel[:, :n] - envelope.log_mel(low.mel[:, :n], low.f0[:n]))
    env_high = torch.from_numpy(envelope.log_mel(high.mel[:, :n], high.f0[:n]))
    target = torch.from_numpy(high.mel[:, :n])
    # Below 2 kHz (the first 40 bins), where the harmonics are resolved.
    errors = {k: (env_high + shift_harmonics(harmonics, k, CONFIG) - target)[:40, voiced]
              .abs().mean().item() for k in (0, 7)}
    print(errors)
    assert errors[7] < 0.75 * errors[0]
    assert torch.equal(shift_harmonics(harmonics, 0, CONFIG), harmonics)
