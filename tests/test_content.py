"""Content features from a local self-supervised model (`voiceconv.models.content`) for the
nearest-neighbour targets: they sit on the mel frame grid, the data module matches frames on
them while still averaging mels, `voiceconv fit` takes the option, and a wrong weights file is
one clear line. No pretrained weights exist on a CI machine, so the model here is a small
wav2vec 2.0 of torchaudio's architecture with random weights: these tests check the
plumbing; what real weights give is measured by `benchmarks/neighbour_lookup.py`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio
import yaml

from tests.conftest import REPO
from voiceconv.cli import run_command
from voiceconv.core.errors import VoiceconvError
from voiceconv.fit.data import SingerPairData
from voiceconv.models.content import ContentEncoder, ContentEncoderConfig, interpolation_grid
from voiceconv.training.crops import load_singer

SMALL = REPO / "recipes" / "common" / "conf" / "cyclegan_small.yaml"
# A small wav2vec 2.0 with the real front end's frame (400 samples, stride 320).
TINY = {"extractor_mode": "group_norm",
        "extractor_conv_layer_config": [[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
        "extractor_conv_bias": False, "encoder_embed_dim": 32, "encoder_projection_dropout": 0.0,
        "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 4, "encoder_num_layers": 2,
        "encoder_num_heads": 2, "encoder_attention_dropout": 0.0,
        "encoder_ff_interm_features": 64, "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.0, "encoder_layer_norm_first": False, "encoder_layer_drop": 0.0,
        "aux_num_out": None}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("content") / "tiny_wav2vec2.pth"
    torch.save(torchaudio.models.wav2vec2_model(**TINY).state_dict(), path)
    return path


def tiny_config(path: Path, **changes) -> ContentEncoderConfig:
    return ContentEncoderConfig(**{"weights": str(path), "architecture": "wav2vec2_model",
                                   "layer": 2, "options": TINY, **changes})


def test_features_sit_at_the_mel_frame_centres(weights):
    """At 16 kHz with an 80-sample hop, mel frame 4j + 2 is centred (at 80 i + 40) exactly on
    the model's frame j (at 320 j + 200): there the feature is the model's own output."""
    encoder = ContentEncoder(tiny_config(weights))
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    frames = encoder.frames(audio, 16000, 80, 200)
    with torch.no_grad():
        layers, _ = encoder.model.extract_features(torch.from_numpy(audio)[None], num_layers=2)
    own = layers[1][0].T  # (dim, 49)
    assert frames.shape == (32, 200)
    assert torch.allclose(frames[:, 2:4 * own.shape[1]:4], own, atol=1e-5)
    # 22.05 kHz, hop 256: frame centres (i + 1/2) * 256 / 22050 s on the 20 ms grid from 12.5 ms
    grid = interpolation_grid(100, 22050, 256, 3)
    assert torch.allclose(grid, torch.tensor([0.0, 1.5 * 256 / 22050 / 0.02 - 0.625,
                                              2.5 * 256 / 22050 / 0.02 - 0.625]).double())


def test_neighbours_are_matched_on_content_features_and_average_mels(prepared, weights):
    plain = SingerPairData(str(prepared.out_dir), "nit_f001", "pjs", val_segments=1,
                           neighbour_k=4)
    content = SingerPairData(str(prepared.out_dir), "nit_f001", "pjs", val_segments=1,
                             neighbour_k=4, content_encoder=tiny_config(weights))
    for data in (plain, content):
        data.setup("fit")
    match = content.content_match()
    segments = {key: [s for s in training_segments(prepared, name)
                      if s.mel.shape[1] >= content.hparams.crop_frames]
                for key, name in (("a", "nit_f001"), ("b", "pjs"))}
    keys = {key: torch.cat([match(s) for s in segs], 1) for key, segs in segments.items()}
    mels = content.train_set.mels
    assert keys["a"].shape == (32, mels["a"].shape[1])
    for i in (0, 57, mels["a"].shape[1] - 1):  # brute force, one frame at a time
        nearest = (keys["b"] - keys["a"][:, i:i + 1]).norm(dim=0).argsort()[:4]
        assert torch.allclose(mels["nn_b"][:, i], mels["b"][:, nearest].mean(1), atol=1e-5)
    assert not torch.allclose(mels["nn_b"], plain.train_set.mels["nn_b"])
    assert torch.equal(mels["a"], plain.train_set.mels["a"])


def training_segments(prepared, name: str) -> list:
    """A singer's segments as SingerPairData trains on them (val_segments=1: the last one
    held out)."""
    return load_singer(prepared.out_dir, name).segments[:-1]


def test_fit_takes_a_content_encoder_from_the_config(fit_config, weights, tmp_path):
    config = tmp_path / "content.yaml"
    config.write_text(yaml.safe_dump({"data": {"init_args": {"content_encoder": {
        "weights": str(weights), "architecture": "wav2vec2_model", "layer": 2,
        "options": TINY}}}}))
    assert run_command("fit", ["--config", str(SMALL), "--config", str(fit_config),
                               "--config", str(config), "--experiment", "content",
                               "--trainer.max_steps", "2", "--preview_every_n_steps", "0"]) == 0
    root = Path(yaml.safe_load(fit_config.read_text())["experiments_root"])
    checkpoint = torch.load(root / "content" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["datamodule_hyper_parameters"]["content_encoder"]["layer"] == 2


def test_weights_saved_from_a_wrapped_bundle_model_load(weights, tmp_path):
    """torchaudio's bundles of the large models wrap the model: its keys start "model."."""
    wrapped = tmp_path / "wrapped.pth"
    state = torch.load(weights, weights_only=True)
    torch.save({f"model.{k}": v for k, v in state.items()}, wrapped)
    audio = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    plain, loaded = (ContentEncoder(tiny_config(path)).frames(audio, 16000, 160, 50)
                     for path in (weights, wrapped))
    assert torch.equal(plain, loaded)


@pytest.mark.parametrize(("changes", "message"), [
    ({"weights": "/nonexistent/wavlm.pth"}, "no such file"),
    ({"architecture": "wavlm_huge"}, "is not one of"),
    ({"layer": 3}, r"layer must be in 1..2"),
    ({"options": {**TINY, "encoder_embed_dim": 48}}, "is not a wav2vec2_model state dict"),
])
def test_a_wrong_content_encoder_is_one_clear_error(weights, changes, message):
    with pytest.raises(VoiceconvError, match=message):
        ContentEncoder(tiny_config(weights, **changes))


def test_a_content_encoder_without_neighbour_targets_is_one_clear_error(prepared, weights):
    data = SingerPairData(str(prepared.out_dir), "nit_f001", "pjs", val_segments=1,
                          content_encoder=tiny_config(weights))
    with pytest.raises(VoiceconvError, match="set data.neighbour_k too"):
        data.setup("fit")


def test_a_file_that_is_not_weights_is_refused_without_unpickling(tmp_path):
    bad = tmp_path / "model.pth"
    torch.save({"note": "not tensors"}, bad)
    with pytest.raises(VoiceconvError, match="not a state dict of tensors"):
        ContentEncoder(ContentEncoderConfig(str(bad), "wav2vec2_model", 1, options=TINY))
    (tmp_path / "garbage.pth").write_bytes(b"\x80\x04not a zip")
    with pytest.raises(VoiceconvError, match="not a readable weights file"):
        ContentEncoder(ContentEncoderConfig(str(tmp_path / "garbage.pth"), "wav2vec2_model", 1,
                                            options=TINY))
