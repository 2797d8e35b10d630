"""The weights that ship in checkpoints/pretrained/: each loads by name without unpickling code,
has its model card, fits the model it is made for, and does its job on real singing it never
saw; a missing or corrupt entry is one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import REPO, prep_excerpts
from voiceconv.core.envelope import SpectralEnvelope
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.pretrained import pretrained_dir, resolve, shipped
from voiceconv.fit.transfer import load_base
from voiceconv.models.generator import SMALL as SMALL_GENERATOR
from voiceconv.pretrain.encoder import EncoderPretraining, load_pretraining
from voiceconv.pretrain.pool import HeldOutSegments
from voiceconv.training.crops import load_singer

SHIPPED = REPO / "checkpoints" / "pretrained"
# The demo's held-out songs: no shipped part was trained on them.
UNSEEN = [("nit_f001", "nitech_jp_song070_f001_029.flac", 0.0, 43.0),
          ("pjs", "pjs020_song.flac", 0.0, 14.0)]


def test_the_shipped_folder_is_the_one_pretrained_names_resolve_in():
    assert pretrained_dir() == SHIPPED
    assert shipped(), "nothing in checkpoints/pretrained/"
    for name in shipped():
        path = Path(resolve(f"pretrained:{name}"))
        assert path.stat().st_size < 25e6, name
        card = (SHIPPED / f"{name}.md").read_text()
        for section in ("## Data", "## Training", "## Reproduce", "## Quality"):
            assert section in card, (name, section)
        checkpoint = torch.load(path, weights_only=True)  # plain data: no code can run
        assert checkpoint["global_step"] > 0


@pytest.fixture(scope="module")
def unseen_prep(tmp_path_factory) -> Path:
    return prep_excerpts(tmp_path_factory, "unseen", UNSEEN)


@pytest.mark.parametrize("name", [n for n in shipped() if n.startswith("singing-base")])
def test_a_shipped_base_fills_in_masked_frames_of_songs_it_never_heard(name, unseen_prep):
    """Loaded by name, it fits the small CycleGAN's encoders and, on every segment of the two
    held-out songs under the same masks, reconstructs the whole and the hidden frames far
    better than its untrained self."""
    base = load_pretraining(f"pretrained:{name}")
    weights = load_base(f"pretrained:{name}", SMALL_GENERATOR, base.feature_config,
                        spectral_envelope=base.hparams.spectral_envelope)
    assert weights.encoder.keys() == dict(base.generator.encoder.state_dict()).keys()

    envelope = SpectralEnvelope(base.feature_config) if base.hparams.spectral_envelope else None
    singers = [load_singer(unseen_prep, singer, envelope=envelope) for singer, *_ in UNSEEN]
    segments = HeldOutSegments(singers, 256, [])
    assert {item["singer"] for item in segments} == {-1} and len(segments) >= 4
    untrained = EncoderPretraining(generator=base.generator.cfg)
    with torch.no_grad():
        before, after = ([m.held_out_losses(item) for item in segments]
                         for m in (untrained, base))
    for part in ("l1", "l1_masked"):
        b, a = (float(np.mean([float(p[part]) for p in parts])) for parts in (before, after))
        assert a < 0.5 * b, (part, b, a)


def test_an_unknown_or_corrupt_entry_is_one_clear_line(tmp_path, monkeypatch):
    with pytest.raises(VoiceconvError, match="no pretrained entry 'nope'.*shipped: .*singing"):
        resolve("pretrained:nope")
    assert resolve("some/path.ckpt") == "some/path.ckpt"

    monkeypatch.setenv("VOICECONV_PRETRAINED", str(tmp_path))
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(VoiceconvError, match="broken.pt is not a voiceconv checkpoint"):
        load_base("pretrained:broken", SMALL_GENERATOR, None)
    with pytest.raises(VoiceconvError, match=r"shipped: broken\)"):
        load_pretraining("pretrained:missing")
