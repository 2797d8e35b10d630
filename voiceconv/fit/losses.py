"""CycleGAN-VC losses as pure functions. Each returns a scalar tensor; the training step
names and logs every term and owns the weights (which are config, never constants here)."""

from __future__ import annotations

import torch


def lsgan_discriminator(real_scores: torch.Tensor,
                        fake_scores: torch.Tensor) -> dict[str, torch.Tensor]:
    """Least-squares GAN, discriminator side: real patches -> 1, generated -> 0."""
    real = torch.mean((real_scores - 1) ** 2)
    fake = torch.mean(fake_scores**2)
    return {"real": real, "fake": fake, "total": 0.5 * (real + fake)}


def lsgan_generator(fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN, generator side: make generated patches score 1."""
    return torch.mean((fake_scores - 1) ** 2)


def cycle_consistency(original: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """L1 between x and G_B->A(G_A->B(x)): the content must survive a round trip."""
    return torch.mean(torch.abs(original - reconstructed))


def identity_mapping(target_domain: torch.Tensor, mapped: torch.Tensor) -> torch.Tensor:
    """L1 between y and G_A->B(y): a B input should pass through G_A->B unchanged."""
    return torch.mean(torch.abs(target_domain - mapped))


def neighbour_target(mapped: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """L1 between G_A->B(x) and, frame by frame, the mean of x's nearest B frames."""
    return torch.mean(torch.abs(mapped - neighbours))
