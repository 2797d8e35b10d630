"""Mel-cepstral distortion computed from log-mel spectrograms, for validation during training.

The cepstrum here is the cosine transform of the natural-log mel magnitude, scaled as a true
cepstrum (log|H(w)| = c0 + 2 sum_k c_k cos(k w) on the mel-warped axis) and without c0 (level),
so its MCD is on the same dB scale as the WORLD mel-cepstral MCD of `voiceconv.core.metrics`, which
remains the reported benchmark figure (it measures rendered audio, not features).
"""

from __future__ import annotations

import math

import torch

from voiceconv.core.metrics import MCD_CONSTANT

__all__ = ["MCD_CONSTANT", "frame_mcd", "mel_cepstrum"]


def mel_cepstrum(log_mel: torch.Tensor, order: int = 24) -> torch.Tensor:
    """log_mel: (..., n_mels, T) -> cepstrum c1..c_order: (..., order, T)."""
    n = log_mel.shape[-2]
    k = torch.arange(1, order + 1, dtype=log_mel.dtype, device=log_mel.device)[:, None]
    m = torch.arange(n, dtype=log_mel.dtype, device=log_mel.device)[None, :]
    basis = torch.cos(math.pi / n * (m + 0.5) * k) / n  # (order, n_mels)
    return basis @ log_mel


def frame_mcd(log_mel_a: torch.Tensor, log_mel_b: torch.Tensor, order: int = 24) -> torch.Tensor:
    """Per-frame MCD in dB between two aligned log-mels (..., n_mels, T) -> (..., T)."""
    diff = mel_cepstrum(log_mel_a, order) - mel_cepstrum(log_mel_b, order)
    return MCD_CONSTANT * diff.pow(2).sum(-2).sqrt()
