"""How much singer identity does each base's encoder keep? A probe per base
(`voiceconv.pretrain.singer_probe`, one hidden layer): fit on the encodings of each pool singer's
training segments, scored on its held-out segment (the pool's validation split), as
balanced accuracy; chance is 1 / singers. Bases to compare: plain masked reconstruction vs
`singer_adversarial`.

Usage: python benchmarks/singer_probe.py --prep recipes/pretrain/dump/pool/prep \
           --base A.ckpt [--base B.ckpt ...]   (untrained encoder: --base untrained)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine  # noqa: E402
from benchmarks.neighbour_lookup import base_encoder  # noqa: E402
from voiceconv.models.generator import SMALL, Encoder  # noqa: E402
from voiceconv.pretrain.pool import SingerPoolData  # noqa: E402
from voiceconv.pretrain.singer_probe import singer_probe_accuracy  # noqa: E402


def encoder_of(base: str) -> Encoder:
    if base == "untrained":
        torch.manual_seed(0)
        return Encoder(SMALL).eval()
    return base_encoder(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prep", action="append", required=True, help="pool prep output(s)")
    parser.add_argument("--base", action="append", required=True)
    args = parser.parse_args()
    data = SingerPoolData(args.prep, val_segments=1)
    data.setup("fit")
    train = [[s.mel for s in singer.segments] for singer in data.singers]
    test: list[list] = [[] for _ in data.singers]
    for item in data.val_set:
        if item["singer"] >= 0:
            test[item["singer"]].append(item["mel"].numpy())
    keep = [i for i, mels in enumerate(test) if mels]  # singers with a held-out segment
    train, test = [train[i] for i in keep], [test[i] for i in keep]
    print(machine())
    print(f"{len(train)} singers (chance {1 / len(train):.3f})")
    print("| base | probe balanced accuracy (held-out segments) |\n|---|---|")
    for base in args.base:
        print(f"| {base} | {singer_probe_accuracy(encoder_of(base), train, test):.3f} |")


if __name__ == "__main__":
    main()
