"""What this CPU runs fast."""

from __future__ import annotations

import platform

import torch


def runs_bf16_fast() -> bool:
    """Whether bf16 autocast has hardware here: an x86 CPU with AMX or AVX512-BF16, and
    oneDNN willing to use it. On other x86 CPUs oneDNN has no bf16 kernels and bf16 trains
    far slower than fp32 (docs/fit.md). Other architectures are not judged (True)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    try:
        units = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
        return bool(units and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private helpers: a torch without them says nothing
        return True
