"""The features shared by data prep, models, vocoders and conversion: log-mel and F0, computed as
a `voiceconv.core.feature_config.FeatureConfig` defines them.

Frame grid: for a signal of N samples there are T = N // hop frames; frame i describes the
instant (i + 0.5) * hop samples, for the log-mel, F0 and voicing alike. The mel pads the
signal by (n_fft - hop) / 2 on each side (reflect) and frames it without centring, as the
HiFi-GAN recipe does, so its frame i is centred on that instant; F0 is estimated on exactly
the same instants.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
from dataclasses import dataclass

import numpy as np
import pyworld
import torch
import torchaudio

from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig


class LogMelSpectrogram(torch.nn.Module):
    """Natural-log mel magnitude. audio: (B, samples) -> mel: (B, n_mels, samples // hop)."""

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.pad = (config.n_fft - config.hop_length) // 2
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate, n_fft=config.n_fft, win_length=config.win_length,
            hop_length=config.hop_length, f_min=config.fmin, f_max=config.fmax,
            n_mels=config.n_mels, power=1.0, center=False, norm="slaney", mel_scale="slaney",
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        padded = torch.nn.functional.pad(audio.unsqueeze(1), (self.pad, self.pad), mode="reflect")
        return torch.log(torch.clamp(self.mel(padded.squeeze(1)), min=self.config.log_floor))


def extract_f0(audio: np.ndarray, config: FeatureConfig, subframes: int = 1) -> np.ndarray:
    """F0 in Hz (0 = unvoiced) on the frame grid: audio (samples,) -> (samples // hop,)
    float32; with `subframes` > 1, that many values per frame, the first on the frame's
    centre and the others every hop / subframes after it."""
    n_values = config.n_frames(audio.shape[0]) * subframes
    period_ms = config.frame_period_ms / subframes
    if config.f0_method == "fcpe":
        f0 = _fcpe_f0(audio, config, n_values, period_ms)
    else:
        # Dropping hop/2 samples puts WORLD's frame k (at k * hop) on our frame centre.
        x = np.ascontiguousarray(audio[config.hop_length // 2:], dtype=np.float64)
        kwargs = dict(f0_floor=config.f0_floor, f0_ceil=config.f0_ceil, frame_period=period_ms)
        if config.f0_method == "harvest":
            # Harvest analyses every 1 ms whatever the period asked: finer F0 costs nothing.
            f0, _ = pyworld.harvest(x, config.sample_rate, **kwargs)
        else:
            f0, t = pyworld.dio(x, config.sample_rate, **kwargs)
            f0 = pyworld.stonemask(x, f0, t, config.sample_rate)
    out = np.zeros(n_values, dtype=np.float32)
    out[: min(n_values, f0.shape[0])] = f0[:n_values]
    return out


def require_f0_method(config: FeatureConfig) -> None:
    """Fail early, in one line, when the configured F0 method is not installed."""
    if config.f0_method == "fcpe" and importlib.util.find_spec("torchfcpe") is None:
        raise VoiceconvError("f0_method 'fcpe' needs the optional extra: "
                             "pip install 'voiceconv[fcpe]'")


@functools.lru_cache(maxsize=1)
def _fcpe_model() -> torch.nn.Module:
    require_f0_method(FeatureConfig(f0_method="fcpe"))
    from torchfcpe import spawn_bundled_infer_model

    # torchfcpe reports its set-up on stdout; keep our output (manifests, tables) clean.
    with contextlib.redirect_stdout(io.StringIO()):
        return spawn_bundled_infer_model(device="cpu")


def _fcpe_f0(audio: np.ndarray, config: FeatureConfig, n_values: int,
             period_ms: float) -> np.ndarray:
    """torchfcpe's bundled pretrained model, sampled every `period_ms` from the first frame
    centre."""
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, :, None]
    with torch.inference_mode():
        f0 = _fcpe_model().infer(x, sr=config.sample_rate, decoder_mode="local_argmax",
                               threshold=0.006, f0_min=config.f0_floor, f0_max=config.f0_ceil,
                               interp_uv=False)
    f0 = f0.squeeze().numpy().astype(np.float64)
    # FCPE frames are 10 ms apart from t = 0: take the nearest one to each instant asked.
    times = 0.5 * config.hop_length / config.sample_rate + np.arange(n_values) * period_ms / 1000
    return f0[np.clip(np.rint(times / 0.01).astype(int), 0, f0.shape[0] - 1)]


@dataclass(frozen=True)
class Features:
    """Frame-aligned features of one clip.

    mel: (n_mels, T) float32 natural-log magnitude; f0: (T,) Hz float32, 0 = unvoiced;
    voiced: (T,) bool; audio: (T * hop,) float32, exactly the samples analysed.
    """

    mel: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray
    audio: np.ndarray


def compute_features(audio: np.ndarray, config: FeatureConfig,
                     mel_transform: LogMelSpectrogram | None = None) -> Features:
    """Log-mel, F0 and voicing of mono `audio` at `config.sample_rate`, on one frame grid."""
    n_frames = config.n_frames(audio.shape[0])
    if n_frames < 1:
        raise VoiceconvError(f"clip too short for one frame ({audio.shape[0]} samples)")
    audio = np.ascontiguousarray(audio[: n_frames * config.hop_length], dtype=np.float32)
    mel_transform = mel_transform or LogMelSpectrogram(config)
    with torch.inference_mode():
        mel = mel_transform(torch.from_numpy(audio)[None])[0].numpy()
    f0 = extract_f0(audio, config)
    return Features(mel=mel, f0=f0, voiced=f0 > 0, audio=audio)
