"""Shared fixtures: short real singing excerpts from the audio bundled with the demo recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from data_prep.config import PrepConfig
from data_prep.pipeline import run_prep
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.metrics import f0_track
from voiceconv.core.threads import in_order

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


def f0_tracks(rate: int, *signals: np.ndarray) -> list[np.ndarray]:
    """`f0_track` of each signal, two at a time: harvest is this suite's largest single cost,
    and it releases the GIL."""
    return list(in_order(lambda x: f0_track(x, rate), list(signals), 2))


def run_docs_example(page: str) -> None:
    """Run the python block under "## From Python" in docs/<page> as written, in the current
    folder: the guides' examples stay true."""
    text = (REPO / "docs" / page).read_text()
    code = text.split("## From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, f"docs/{page}", "exec"), {})


def prep_excerpts(tmp_path_factory, name: str, excerpts) -> Path:
    """`excerpts` written as a corpus and prepared with dio (fast; for tests where only the
    mels count), in fresh temporary folders named after `name`."""
    corpus = write_corpus(tmp_path_factory.mktemp(name), excerpts)
    out = tmp_path_factory.mktemp(f"{name}_prep")
    run_prep(corpus, out, PrepConfig(features=FeatureConfig(f0_method="dio")), jobs=1,
             progress=False)
    return out


@pytest.fixture(scope="session")
def excerpt_corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def prepared(excerpt_corpus, tmp_path_factory):
    """The full prep pipeline run once, in-process, on the excerpt corpus (default config)."""
    out = tmp_path_factory.mktemp("prep")
    report = run_prep(excerpt_corpus, out, PrepConfig(), jobs=1, progress=False)
    return report


@pytest.fixture(scope="session")
def fit_config(prepared, tmp_path_factory) -> Path:
    """A CPU-sized run over the prepared excerpts: tiny crops, validation on 2 held-out pairs."""
    folder = tmp_path_factory.mktemp("fit")
    config = {
        "data": {"class_path": "voiceconv.fit.data.SingerPairData", "init_args": {
            "prep_dir": str(prepared.out_dir), "singer_a": "nit_f001", "singer_b": "pjs",
            "crop_frames": 32, "batch_size": 2, "val_segments": 1, "val_max_frames": 128,
            "neighbour_k": 4}},
        "trainer": {"max_steps": 4, "val_check_interval": 2, "check_val_every_n_epoch": None,
                    "log_every_n_steps": 1, "enable_progress_bar": False, "accelerator": "cpu",
                    "enable_model_summary": False},
        "experiments_root": str(folder / "checkpoints"),
        "checkpoint_every_n_steps": 2, "preview_every_n_steps": 2, "wandb": False,
        "model": {"init_args": {"discriminator": {"channels": 8, "downsamples": 2},
                                "max_masked_frames": 8}},
    }
    path = folder / "fit.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fit_for_conversion(fit_config: Path, experiment: str, *args: str) -> Path:
    from voiceconv.cli import run_command

    small = REPO / "recipes" / "common" / "conf" / "cyclegan_small.yaml"
    assert run_command("fit", ["--config", str(small), "--config", str(fit_config),
                               "--experiment", experiment, "--trainer.max_steps", "2",
                               "--preview_every_n_steps", "0", *args]) == 0
    root = Path(yaml.safe_load(fit_config.read_text())["experiments_root"])
    return root / experiment / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def fitted_model(fit_config) -> Path:
    """A small CycleGAN (NIT-F001 = A, PJS = B) fitted for a few steps: enough for conversion
    tests, which check what the pipeline around the generator guarantees."""
    return fit_for_conversion(fit_config, "convert-model")


@pytest.fixture(scope="session")
def fitted_envelope_model(fit_config) -> Path:
    """The same, converting spectral envelopes (data.spectral_envelope)."""
    return fit_for_conversion(fit_config, "convert-envelope-model",
                              "--data.init_args.spectral_envelope", "true")
