"""Filling-in-frames (FIF) masking of MaskCycleGAN-VC: hide a random span of frames of the
source mel so the generator learns to fill it from context."""

from __future__ import annotations

import torch


def fif_mask(batch: int, n_frames: int, max_masked: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu", spans: int = 1) -> torch.Tensor:
    """(B, 1, 1, T) float mask: 0 on `spans` random spans of 0..max_masked frames per item
    (they may overlap), else 1.

    Seeded through `generator`, so training with masking stays exactly reproducible.
    """
    if max_masked <= 0:
        return torch.ones(batch, 1, 1, n_frames, device=device)
    if spans > 1:
        return torch.stack([fif_mask(batch, n_frames, max_masked, generator, device)
                            for _ in range(spans)]).amin(0)
    max_masked = min(max_masked, n_frames)
    lengths = torch.randint(0, max_masked + 1, (batch,), generator=generator)
    starts = (torch.rand(batch, generator=generator) * (n_frames - lengths + 1)).long()
    frames = torch.arange(n_frames)
    hidden = (frames >= starts[:, None]) & (frames < (starts + lengths)[:, None])
    return (~hidden).float().view(batch, 1, 1, n_frames).to(device)
