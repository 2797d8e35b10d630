"""What the generator can reach when it is given the answer: a diagnosis for "does it learn?".

The CycleGAN learns us2 -> us3 from non-parallel data, through adversarial, cycle and identity
losses. This trains the same generator (one direction, same features and per-singer
normalisation, same optimiser settings) with a plain L1 loss on *parallel* crops of the
sample-aligned mbrola dev melodies (every other aligned pair), and scores the other pairs with
the validation's mel-cepstral MCD. If this bound drops far below the identity while the
CycleGAN stays at the identity, the generator is able and the non-parallel training signal is
what is missing (not a bug in features, normalisation or the network).

With --discriminator CKPT (a fitted us2 -> us3 CycleGAN), it also measures that signal on the
same held-out pairs: the cosine between the direction the adversarial loss moves the converted
mel (minus its gradient) and the direction to the aligned real us3 (a random direction: ~0),
and D_b's mean score of converted us2 and of real us3 (LSGAN: 1 = real).

Usage: python benchmarks/parallel_bound.py [--prep recipes/mbrola/dump/us2_us3] [--steps 300]
       [--eval-every 100] [--no-global-residual] [--discriminator CKPT]
(--prep: the mbrola recipe's prep outputs, `bash recipes/mbrola/run.sh --stop-stage 1`; the
statistics come from prep_train, the pairs from prep_dev.)
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.common import machine  # noqa: E402
from data_prep.prepared import load_stats  # noqa: E402
from voiceconv.core.feature_config import FeatureConfig  # noqa: E402
from voiceconv.core.melcep import frame_mcd  # noqa: E402
from voiceconv.fit.cyclegan import load_model  # noqa: E402
from voiceconv.fit.data import parallel_pairs  # noqa: E402
from voiceconv.fit.losses import lsgan_generator  # noqa: E402
from voiceconv.models import Generator  # noqa: E402
from voiceconv.models.generator import SMALL  # noqa: E402
from voiceconv.training.crops import load_singer  # noqa: E402

CROP, BATCH, LR, BETAS = 64, 4, 5e-4, (0.5, 0.999)  # as recipes/mbrola/conf/fit.yaml + small


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prep", type=Path, default=REPO / "recipes/mbrola/dump/us2_us3")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--no-global-residual", action="store_true")
    parser.add_argument("--discriminator", type=Path, help="a fitted us2 -> us3 checkpoint")
    args = parser.parse_args()

    stats = load_stats(args.prep / "prep_train")
    source, target = (load_singer(args.prep / "prep_dev", s, stats[s]) for s in ("us2", "us3"))
    features = FeatureConfig.load(args.prep / "prep_dev" / "feature_config.json")
    hop_s = features.frame_period_ms / 1000
    pairs = parallel_pairs(source, target, hop_s)
    train = [p for p in pairs[::2] if p[0].shape[1] >= CROP]
    test = pairs[1::2]
    mean, std = (torch.tensor(stats["us3"][k])[:, None] for k in ("mel_mean", "mel_std"))

    def test_mcd(generator: Generator) -> float:
        """Mean frame MCD (dB) of converted vs real us3 on the held-out aligned pairs."""
        values = []
        with torch.no_grad():
            for x, y in test:
                n = x.shape[1] // 4 * 4
                out = generator(torch.from_numpy(x[None, :, :n]))
                values.append(frame_mcd(out * std + mean,
                                        torch.from_numpy(y[None, :, :n]) * std + mean).flatten())
        return torch.cat(values).mean().item()

    torch.manual_seed(0)
    config = dataclasses.replace(SMALL, global_residual=not args.no_global_residual)
    generator = Generator(config)
    optimizer = torch.optim.Adam(generator.parameters(), LR, betas=BETAS)
    rng = np.random.default_rng(0)
    seconds = sum(x.shape[1] for x, _ in train) * hop_s
    print(machine())
    print(f"small generator (global residual {config.global_residual}), L1 on {len(train)} "
          f"aligned us2/us3 pairs ({seconds:.0f} s), scored on {len(test)} others; "
          f"batch {BATCH} x {CROP} frames, Adam {LR}\n")
    print("| steps | seconds | test MCD dB (mel-cepstral) |")
    print("|---|---|---|")
    print(f"| 0 | 0 | {test_mcd(generator):.2f} |", flush=True)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        xs, ys = [], []
        for _ in range(BATCH):
            x, y = train[rng.integers(len(train))]
            i = rng.integers(x.shape[1] - CROP + 1)
            xs.append(x[:, i: i + CROP])
            ys.append(y[:, i: i + CROP])
        loss = (generator(torch.from_numpy(np.stack(xs))) - torch.from_numpy(np.stack(ys))).abs()
        optimizer.zero_grad()
        loss.mean().backward()
        optimizer.step()
        if step % args.eval_every == 0:
            print(f"| {step} | {time.perf_counter() - start:.0f} | {test_mcd(generator):.2f} |",
                  flush=True)
    if args.discriminator:
        print(adversarial_direction(args.discriminator, test))


def adversarial_direction(checkpoint: Path, pairs: list) -> str:
    """How well the adversarial gradient of a fitted CycleGAN points at the real target."""
    model = load_model(str(checkpoint))
    cosines, scores = [], []
    for x, y in pairs:
        n = x.shape[1] // 4 * 4
        source, target = torch.from_numpy(x[None, :, :n]), torch.from_numpy(y[None, :, :n])
        with torch.no_grad():
            converted = model.g_ab(source)
        converted.requires_grad_(True)
        (grad,) = torch.autograd.grad(lsgan_generator(model.d_b(converted)), converted)
        cosines.append(torch.cosine_similarity(-grad.flatten(), (target - converted).flatten(),
                                               dim=0).item())
        with torch.no_grad():
            scores.append((model.d_b(converted).mean().item(), model.d_b(target).mean().item()))
    return (f"\n{checkpoint}: cosine(adversarial step, direction to real us3) "
            f"{statistics.mean(cosines):.3f}; D_b score of converted us2 "
            f"{statistics.mean(s[0] for s in scores):.2f}, of real us3 "
            f"{statistics.mean(s[1] for s in scores):.2f}")


if __name__ == "__main__":
    main()
