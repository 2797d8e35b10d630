"""Naturalness without a listener or a network: DNSMOS P.835 (SIG: the voice itself, BAK: the
background, OVRL: overall, each on a 1-5 scale), from the ONNX models that ship inside the
`speechmos` wheel. Trained on speech, it still ranks a buzzing or noisy rendering of singing
below a clean one, which is what a conversion must not lose. Optional:
`pip install 'voiceconv[speaker]'`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from voiceconv.core.audio import load_mono

DNSMOS_RATE = 16000  # the models' rate
MISSING = "naturalness skipped: pip install 'voiceconv[speaker]' (speechmos, onnxruntime)"
KEYS = {"sig_mos": "dnsmos_sig", "bak_mos": "dnsmos_bak", "ovrl_mos": "dnsmos_ovrl"}


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
        import speechmos  # noqa: F401
    except ImportError:
        return False
    return True


def dnsmos(audio: np.ndarray) -> dict[str, float]:
    """{"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"} of mono audio at 16 kHz (the mean over
    9-s windows a second apart; shorter audio is looped to one window)."""
    from speechmos import dnsmos as model

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak == 0.0 or not np.isfinite(peak):
        return {key: math.nan for key in KEYS.values()}
    scores = model.run(np.clip(audio, -1.0, 1.0).astype(np.float32), DNSMOS_RATE)
    return {KEYS[k]: float(scores[k]) for k in KEYS}


def naturalness(pairs: list[Any]) -> tuple[list[dict[str, float]], str]:
    """Per pair: DNSMOS of the converted file and, with a source, of the unconverted source
    (`dnsmos_ovrl_source`) and the difference (`dnsmos_ovrl_change`, < 0: less natural)."""
    if not available():
        return [{} for _ in pairs], MISSING
    rows = []
    for pair in pairs:
        row = dnsmos(load_mono(pair.converted, DNSMOS_RATE))
        if pair.source is not None:
            source = dnsmos(load_mono(pair.source, DNSMOS_RATE))
            row.update({f"{k}_source": v for k, v in source.items()})
            row["dnsmos_ovrl_change"] = row["dnsmos_ovrl"] - source["dnsmos_ovrl"]
        rows.append(row)
    return rows, ""
