"""The shared feature definition: frame grid, F0 accuracy, mel definition, config contract."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from tests.conftest import TEST_DATA
from voiceconv.core.audio import load_mono
from voiceconv.core.errors import FeatureConfigMismatch
from voiceconv.core.feature_config import PRESETS, FeatureConfig
from voiceconv.core.features import LogMelSpectrogram, compute_features, extract_f0

E4_HZ = 329.6276


def cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1200 * np.log2(a / b)


def _methods() -> list:
    """harvest and dio always; fcpe when its optional extra is installed."""
    try:
        import torchfcpe  # noqa: F401

        fcpe = "fcpe"
    except ImportError:
        fcpe = pytest.param("fcpe", marks=pytest.mark.skip("optional extra torchfcpe missing"))
    return ["harvest", "dio", fcpe]


@pytest.mark.parametrize("n_samples", [256 * 40, 256 * 40 + 1, 256 * 41 - 1])
def test_mel_f0_and_audio_share_one_frame_grid(n_samples):
    config = FeatureConfig(f0_method="dio")
    rng = np.random.default_rng(0)
    feats = compute_features(rng.standard_normal(n_samples).astype(np.float32) * 0.1, config)
    n_frames = n_samples // config.hop_length
    assert feats.mel.shape == (config.n_mels, n_frames)
    assert feats.f0.shape == feats.voiced.shape == (n_frames,)
    assert feats.audio.shape == (n_frames * config.hop_length,)
    assert feats.mel.dtype == feats.f0.dtype == np.float32 and feats.voiced.dtype == bool


@pytest.mark.parametrize("method", _methods())
def test_f0_of_a_sung_e4_is_within_20_cents(method):
    config = FeatureConfig(f0_method=method)
    feats = compute_features(load_mono(TEST_DATA / "soprano-E4.flac", config.sample_rate), config)
    assert feats.voiced.mean() > 0.8
    assert abs(cents(np.median(feats.f0[feats.voiced]), E4_HZ)) < 20


@pytest.mark.parametrize("method", _methods())
def test_f0_frame_i_describes_the_instant_i_plus_half_hop(method):
    """A voice-like tone with vibrato (+-50 cents, 5.5 Hz): the time shift that best aligns
    the measured F0 curve with the true one must be a small fraction of a frame."""
    config = FeatureConfig(f0_method=method)
    sr, hop = config.sample_rate, config.hop_length
    t = np.arange(3 * sr) / sr

    def vibrato_cents(when: np.ndarray) -> np.ndarray:
        return 50 * np.sin(2 * np.pi * 5.5 * when)

    phase = 2 * np.pi * np.cumsum(440 * 2 ** (vibrato_cents(t) / 1200)) / sr
    x = sum(a * np.sin(k * phase) for k, a in enumerate([0.3, 0.15, 0.09, 0.06], start=1))
    x = (x + 1e-3 * np.random.default_rng(0).standard_normal(t.shape)).astype(np.float32)
    f0 = extract_f0(x, config)
    centres = (np.arange(f0.shape[0]) + 0.5) * hop / sr
    inside = (centres > 0.3) & (centres < 2.7)
    assert (f0[inside] > 0).mean() > 0.95
    inside &= f0 > 0
    measured = cents(f0[inside], 440)
    shifts = np.arange(-2, 2.001, 0.05)  # in frames
    mse = [np.mean((measured - vibrato_cents(centres[inside] + s * hop / sr)) ** 2)
           for s in shifts]
    assert abs(shifts[int(np.argmin(mse))]) <= 0.2
    assert np.sqrt(min(mse)) < 5  # and the curve itself is right to a few cents
    # Four values a frame (what WORLD is given): frame k's own first, then every hop / 4.
    fine = extract_f0(x, config, subframes=4)
    assert fine.shape == (4 * f0.shape[0],)
    both = (fine[::4] > 0) & (f0 > 0)
    assert np.abs(cents(fine[::4][both], f0[both])).max() < 1
    times = centres[0] + np.arange(fine.shape[0]) * hop / 4 / sr
    inside = (times > 0.3) & (times < 2.7) & (fine > 0)
    assert np.sqrt(np.mean((cents(fine[inside], 440) - vibrato_cents(times[inside])) ** 2)) < 5


def test_mel_frame_i_is_centred_on_the_instant_i_plus_half_hop():
    config = FeatureConfig()
    hop, sr = config.hop_length, config.sample_rate
    onset = 100 * hop + 77  # a tone switched on between frame centres
    x = np.zeros(200 * hop, dtype=np.float32)
    x[onset:] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(x.shape[0] - onset) / sr)
    with torch.inference_mode():
        energy = LogMelSpectrogram(config)(torch.from_numpy(x)[None])[0].exp().pow(2).sum(0)
    half = energy[150] / 2  # the window straddling the onset holds about half the energy
    first_half_on = int(torch.nonzero(energy > half)[0])
    assert abs(first_half_on - (onset / hop - 0.5)) <= 1


def test_log_mel_matches_the_hifigan_definition():
    """Reference: librosa slaney mel basis on |STFT| of the reflect-padded signal, log-clamped."""
    config = PRESETS["hifigan-22k"]
    x = load_mono(TEST_DATA / "soprano-E4.flac", config.sample_rate)
    with torch.inference_mode():
        ours = LogMelSpectrogram(config)(torch.from_numpy(x)[None])[0].numpy()
    pad = (config.n_fft - config.hop_length) // 2
    spec = np.abs(librosa.stft(np.pad(x, pad, mode="reflect"), n_fft=config.n_fft,
                               hop_length=config.hop_length, win_length=config.win_length,
                               center=False))
    basis = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                                fmin=config.fmin, fmax=config.fmax)
    reference = np.log(np.maximum(basis @ spec, config.log_floor))
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-3


def test_feature_config_round_trips_and_names_every_mismatch(tmp_path):
    config = PRESETS["24k-10ms"]
    config.save(tmp_path / "fc.json")
    assert FeatureConfig.load(tmp_path / "fc.json") == config
    with pytest.raises(FeatureConfigMismatch) as err:
        FeatureConfig().require_same(config)
    for field in ("sample_rate", "hop_length", "fmax"):
        assert field in str(err.value)
    assert "22050" in str(err.value) and "24000" in str(err.value)
    FeatureConfig().require_same(FeatureConfig())  # equal configs pass
