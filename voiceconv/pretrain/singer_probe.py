"""How much of the singer is in an encoding? A probe: a small classifier (one hidden layer) trained
to tell the singer from single encoder frames of some segments and scored on other segments. Not
a linear one: each singer's mels are normalised with its own mean and variance (and the encoder
normalises its channels per segment), so the singers' frames share their means and a linear
probe sits near chance even on the mels themselves. Balanced accuracy (the mean of the
per-singer recalls) is 1/n for an encoding that hides the singer and 1 for one that shows it;
used to compare pretraining tasks (`voiceconv pretrain --model.init_args.singer_adversarial`).
"""

from __future__ import annotations

import numpy as np
import torch

from voiceconv.models.generator import Encoder
from voiceconv.training.crops import trim_frames


def encode_frames(encoder: Encoder, mel: np.ndarray) -> torch.Tensor:
    """(n_mels, T) normalised mel -> (T // 4, channels): the encoder's frames, nothing masked."""
    x = torch.from_numpy(trim_frames(mel, mel.shape[1]))
    with torch.no_grad():
        return encoder(torch.stack([x, torch.ones_like(x)])[None])[0].T


def singer_probe_accuracy(encoder: Encoder, train: list[list[np.ndarray]],
                          test: list[list[np.ndarray]], frames_per_singer: int = 2000,
                          steps: int = 300, seed: int = 0) -> float:
    """Balanced accuracy on `test` of a probe fit on `train`; `train[i]` and `test[i]`
    are singer i's normalised mels (disjoint segments). Each singer gives at most
    `frames_per_singer` training frames (drawn with `seed`), so none dominates."""
    rng = torch.Generator().manual_seed(seed)

    def frames(mels: list[np.ndarray]) -> torch.Tensor:
        return torch.cat([encode_frames(encoder, m) for m in mels if m.shape[1] >= 4])

    xs, ys = [], []
    for singer, mels in enumerate(train):
        x = frames(mels)
        x = x[torch.randperm(len(x), generator=rng)[:frames_per_singer]]
        xs.append(x)
        ys.append(torch.full((len(x),), singer))
    x, y = torch.cat(xs), torch.cat(ys)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    probe = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, len(train)))
    with torch.no_grad():  # seeded here, not by the global RNG
        for p in probe.parameters():
            p.copy_((torch.rand(p.shape, generator=rng) * 2 - 1) / p.shape[-1] ** 0.5)
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(probe((x - mean) / std), y).backward()
        optimizer.step()
    with torch.no_grad():
        recalls = [float((probe((frames(mels) - mean) / std).argmax(1) == singer)
                         .float().mean()) for singer, mels in enumerate(test)]
    return float(np.mean(recalls))
