"""What the singing vocoder's GPU run needs that the device machine lacks, into `.gpu/`
(benchmarks/gpu_prepare.sh runs this):

`.gpu/singing/<singer>/`: the real singing of ../shared/data/singing that the repository does
not already hold (recipes/demo/audio has NIT-F001 and PJS 001-020), minus the held-out songs
and the singers left out. The vocoder there is fine-tuned from the newest shipped generator
(`pretrained:nsf-singing-lite-v2`, in git), so the universal HiFi-GAN weights stay behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "singing"
# Never trained on (as recipes/pretrain/run.sh stage 4): the held-out evaluation songs, and the
# smstools set whole, the singers the vocoder never saw.
HELD_OUT = {"nitech_jp_song070_f001_029", "pjs020_song"}
LEFT_OUT_SINGERS = {"smstools"}


def copy_singing(out: Path) -> int:
    """The pool's songs that recipes/demo/audio lacks, one folder per singer; returns bytes."""
    in_repo = {p.name for p in (REPO / "recipes" / "demo" / "audio").rglob("*.flac")}
    total = 0
    for song in sorted(SHARED.glob("*/*.flac")):
        if song.stem in HELD_OUT or song.parent.name in LEFT_OUT_SINGERS or song.name in in_repo:
            continue
        singer = song.parent.name
        (out / singer).mkdir(parents=True, exist_ok=True)
        shutil.copy2(song, out / singer / song.name)
        total += song.stat().st_size
    return total


def main() -> None:
    gpu = REPO / ".gpu"
    shutil.rmtree(gpu / "singing", ignore_errors=True)
    print(f"singing: {copy_singing(gpu / 'singing') / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
