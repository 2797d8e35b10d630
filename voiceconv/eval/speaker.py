"""Speaker similarity from the pretrained GE2E encoder that ships inside the `resemblyzer`
wheel (works offline). Optional: `pip install 'voiceconv[speaker]'`."""

from __future__ import annotations

import contextlib
import functools
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from voiceconv.core.audio import load_mono
from voiceconv.core.errors import VoiceconvError

ENCODER_RATE = 16000  # GE2E was trained on 16 kHz audio
EMBEDDING_SIZE = 256  # resemblyzer's GE2E
SILENCE = 1e-4  # peak amplitude below which a file is taken as silent
MISSING = "speaker similarity skipped: pip install 'voiceconv[speaker]' (resemblyzer)"


@functools.lru_cache(maxsize=1)
def _encoder() -> Any:
    from resemblyzer import VoiceEncoder

    with contextlib.redirect_stdout(io.StringIO()):  # it announces itself on stdout
        return VoiceEncoder("cpu")


def embed(path: Any) -> np.ndarray:
    """Unit-length speaker embedding of one file; NaN for silence, which has no speaker (and
    which resemblyzer's level normalisation would divide by zero)."""
    from resemblyzer import preprocess_wav

    audio = load_mono(path, ENCODER_RATE)
    if not np.any(np.abs(audio) > SILENCE):
        return np.full(EMBEDDING_SIZE, np.nan, np.float32)
    return _encoder().embed_utterance(preprocess_wav(audio, source_sr=ENCODER_RATE))


def set_embedding(embeddings: list[np.ndarray]) -> np.ndarray:
    """The speaker of a set of files: the normalised mean of their (finite) embeddings."""
    finite = [e for e in embeddings if np.isfinite(e).all()]
    if not finite:
        return np.full(EMBEDDING_SIZE, np.nan, np.float32)
    mean = np.mean(finite, axis=0)
    return mean / np.linalg.norm(mean)


def voice_embedding(files: list[Any], who: str) -> tuple[np.ndarray, str]:
    """The centroid of a singer's recordings, and a note naming any that could not be read:
    one bad file among a singer's songs spoils neither the others nor the measurements made
    before the voices are read."""
    embeddings, unreadable = [], []
    for path in files:
        try:
            embeddings.append(embed(path))
        except VoiceconvError as exc:
            unreadable.append(str(exc))
    if not embeddings:
        raise VoiceconvError(f"none of the {who}'s recordings could be read; the first: "
                             f"{unreadable[0]}")
    note = (f"the {who}'s voice leaves out {len(unreadable)} unreadable recording(s), e.g. "
            f"{unreadable[0]}") if unreadable else ""
    return set_embedding(embeddings), note


def speaker_similarities(pairs: list[Any], target_voice: list[Path] | None = None,
                         source_voice: list[Path] | None = None) -> tuple[list[dict], str]:
    """Per pair: cosine similarity of the converted file to the target singer's voice, to
    the source singer's voice, and their difference (how far the identity moved); and of the
    unconverted source file to the target's voice, the baseline: a conversion moves toward
    the target when `speaker_sim_target` exceeds it (`speaker_sim_gain` > 0).

    A singer's voice is the centroid of `target_voice` / `source_voice` (their recordings,
    e.g. the training songs) when given, else of the pairs' references / sources."""
    try:
        import resemblyzer  # noqa: F401
    except ImportError:
        return [{} for _ in pairs], MISSING
    target, target_note = voice_embedding(target_voice or [p.reference for p in pairs],
                                          "target singer")
    unconverted = [embed(p.source) if p.source is not None else None for p in pairs]
    source_note = ""
    if source_voice:
        source, source_note = voice_embedding(source_voice, "source singer")
    else:
        known = [e for e in unconverted if e is not None]
        source = set_embedding(known) if known else None
    rows = []
    for pair, before in zip(pairs, unconverted, strict=True):
        e = embed(pair.converted)
        sim_target = float(e @ target)
        sim_source = float(e @ source) if source is not None else math.nan
        sim_before = float(before @ target) if before is not None else math.nan
        rows.append({"speaker_sim_target": sim_target, "speaker_sim_source": sim_source,
                     "speaker_sim_shift": sim_target - sim_source,
                     "speaker_sim_target_unconverted": sim_before,
                     "speaker_sim_gain": sim_target - sim_before})
    return rows, "; ".join(note for note in (target_note, source_note) if note)
