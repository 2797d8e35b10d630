"""What the singing vocoder's GPU run needs that the device machine lacks, into `.gpu/`
(benchmarks/gpu_prepare.sh runs this):

`.gpu/singing/<singer>/`: the real singing of ../shared/data/singing that the repository does
not already hold (recipes/demo/audio has NIT-F001 and PJS 001-020), minus the held-out songs
and the singers left out. The vocoder there is fine-tuned from the newest shipped generator
(`pretrained:nsf-singing-lite-v2`, in git), so the universal HiFi-GAN weights stay behind.

`--budget-bytes N` (what the device tool's 64 MiB leaves beside the checkout): songs that would
take the folder past it stay behind, named in the output; the run trains on fewer songs.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "singing"
# Never trained on (as recipes/pretrain/run.sh stage 4): the held-out evaluation songs, and the
# smstools set whole, the singers the vocoder never saw.
HELD_OUT = {"nitech_jp_song070_f001_029", "pjs020_song"}
LEFT_OUT_SINGERS = {"smstools"}


def copy_singing(out: Path, budget: float = float("inf")) -> tuple[int, list[str]]:
    """The pool's songs that recipes/demo/audio lacks, one folder per singer, within `budget`
    bytes; returns (bytes copied, the songs left behind). The singers with the least singing
    come first, so a tight budget trims the one with the most (PJS), not a whole voice."""
    in_repo = {p.name for p in (REPO / "recipes" / "demo" / "audio").rglob("*.flac")}
    sizes = {song: song.stat().st_size for song in sorted(SHARED.glob("*/*.flac"))
             if song.stem not in HELD_OUT and song.parent.name not in LEFT_OUT_SINGERS
             and song.name not in in_repo}
    per_singer: dict[str, int] = {}
    for song, size in sizes.items():
        per_singer[song.parent.name] = per_singer.get(song.parent.name, 0) + size
    total, left = 0, []
    for song in sorted(sizes, key=lambda song: (per_singer[song.parent.name], song.name)):
        size = sizes[song]
        if total + size > budget:
            left.append(song.name)
            continue
        singer = song.parent.name
        (out / singer).mkdir(parents=True, exist_ok=True)
        shutil.copy2(song, out / singer / song.name)
        total += size
    return total, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-bytes", type=float, default=float("inf"))
    args = parser.parse_args()
    gpu = REPO / ".gpu"
    shutil.rmtree(gpu / "singing", ignore_errors=True)
    total, left = copy_singing(gpu / "singing", args.budget_bytes)
    print(f"singing: {total / 1e6:.1f} MB" +
          (f"; left behind for the device tool's limit: {len(left)} songs ({', '.join(left)})"
           if left else ""))


if __name__ == "__main__":
    main()
