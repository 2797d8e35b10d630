"""Figures without a display: matplotlib on its file-only backend, saved as PNG."""

from __future__ import annotations

import io
import math
from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (works headless, on clusters and in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig: Any, dpi: int = 80, tight: bool = True) -> bytes:
    """Render and close `fig` (`tight`: cropped to what is drawn, at the cost of a second
    layout pass)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    return buffer.getvalue()


def format_number(value: Any, missing: str = "–") -> str:
    """3 decimals for numbers; `missing` for NaN/None, which must never read as a score."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.3f}" if isinstance(value, float) else str(value)
