"""Nearest-neighbour means: frames of one singer described by frames of the other.

Training (`voiceconv.fit.data`): the adversarial loss tells the generator only what the target
singer sounds like on average; nothing says which target frame a given source frame should
become. Nearest neighbours do, in the spirit of INCA (Erro, Moreno & Bonafonte, 2010:
non-parallel alignment by nearest neighbours) and kNN-VC (Baas et al., 2023): after per-singer
normalisation, the target frames closest to a source frame are mostly the same sound sung at
a similar place in the range, and their mean is a usable stand-in for the unknown parallel
frame. A generator trained toward it keeps the cycle and adversarial losses that a plain
lookup lacks (measurements: docs/journal/2026-11-24-nearest-neighbour-targets.md).

Conversion (`voiceconv.models.pair`, `match_k`): the generator's output is a better query than
the source, so its frames can be replaced by the mean of their nearest target frames
(docs/journal/2026-12-05-frame-matching.md).
"""

from __future__ import annotations

import torch


def neighbour_means(queries: torch.Tensor, bank: torch.Tensor, k: int, chunk: int = 2048,
                    values: torch.Tensor | None = None) -> torch.Tensor:
    """For every query frame, the mean of its `k` nearest bank frames (Euclidean).

    queries: (D, N), bank: (D, M), both in their own singer's normalised units (mels) or
    both content features (`voiceconv.models.content`); values: (n_mels, M), what is averaged, one
    column per bank frame (default: the bank itself); returns (n_mels, N). Cost
    O(N * M * D): about 3 s for 17,000 mel frames against 17,000 (3.3 minutes each) on two
    CPU cores; hours of audio call for a sub-sampled bank.
    """
    if not 0 < k <= bank.shape[1]:
        raise ValueError(f"k must be in 1..{bank.shape[1]} (bank frames), got {k}")
    bank_t = bank.T.contiguous()
    values_t = bank_t if values is None else values.T.contiguous()
    out = torch.empty(values_t.shape[1], queries.shape[1], dtype=values_t.dtype,
                      device=values_t.device)
    for start in range(0, queries.shape[1], chunk):
        block = queries[:, start: start + chunk].T
        nearest = torch.cdist(block, bank_t).topk(k, largest=False).indices  # (chunk, k)
        out[:, start: start + chunk] = values_t[nearest].mean(1).T
    return out
