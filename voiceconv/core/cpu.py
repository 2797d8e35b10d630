"""What this CPU (or GPU) runs fast."""

from __future__ import annotations

import functools
import platform

import torch


def _is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


@functools.lru_cache(maxsize=1)
def _x86_bf16_units() -> bool | None:
    """Whether this x86 CPU has AMX or AVX512-BF16 and oneDNN is willing to use them; None
    when this torch cannot tell."""
    try:
        units = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
        return bool(units and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private helpers: a torch without them says nothing
        return None


def runs_bf16_fast() -> bool:
    """Whether bf16 autocast has hardware here: an x86 CPU with AMX or AVX512-BF16, and
    oneDNN willing to use it. On other x86 CPUs oneDNN has no bf16 kernels and bf16 trains
    far slower than fp32 (docs/fit.md). Other architectures, and a torch that cannot tell,
    are not judged (True): this only decides whether to warn."""
    return not _is_x86() or _x86_bf16_units() is not False


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether to choose bf16 on `device` unasked: a GPU with bf16 support, or an x86 CPU
    known to have bf16 units. Anything unknown stays in fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and _is_x86() and _x86_bf16_units() is True
