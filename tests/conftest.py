"""Shared fixtures: short real singing excerpts from the audio bundled with the demo recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.config import PrepConfig
from data_prep.pipeline import run_prep

REPO = Path(__file__).resolve().parents[1]
DEMO_AUDIO = REPO / "recipes" / "demo" / "audio"
TEST_DATA = Path(__file__).resolve().parent / "data"

# (singer, bundled file, start s, length s): two singers, two songs each, 10 s per excerpt.
EXCERPTS = [
    ("nit_f001", "nitech_jp_song070_f001_004.flac", 1.0, 10.0),
    ("nit_f001", "nitech_jp_song070_f001_007.flac", 1.0, 10.0),
    ("pjs", "pjs001_song.flac", 0.5, 10.0),
    ("pjs", "pjs002_song.flac", 0.5, 10.0),
]


def read_excerpt(singer: str, name: str, start: float, length: float) -> tuple[np.ndarray, int]:
    info = sf.info(DEMO_AUDIO / singer / name)
    first = int(start * info.samplerate)
    x, sr = sf.read(DEMO_AUDIO / singer / name, start=first,
                    stop=first + int(length * info.samplerate), dtype="float32")
    return x, sr


def write_corpus(root: Path, excerpts=EXCERPTS) -> Path:
    for singer, name, start, length in excerpts:
        x, sr = read_excerpt(singer, name, start, length)
        (root / singer).mkdir(parents=True, exist_ok=True)
        sf.write(root / singer / name, x, sr, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def excerpt_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def prepared(excerpt_corpus, tmp_path_factory):
    """The full prep pipeline run once, in-process, on the excerpt corpus (default config)."""
    out = tmp_path_factory.mktemp("prep")
    report = run_prep(excerpt_corpus, out, PrepConfig(), jobs=1, progress=False)
    return report
