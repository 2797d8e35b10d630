"""The trainable NSF-HiFi-GAN vocoder: its sine source is on pitch, it starts as the universal
HiFi-GAN, it trains through `voiceconv fit` and resumes exactly, its checkpoint is a vocoder
for convert, and chunked rendering equals one-shot rendering."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from data_prep.prepared import read_manifest
from tests.conftest import REPO
from voiceconv.cli import run_command
from voiceconv.core.checkpoint import load_plain
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.metrics import f0_metrics, f0_track
from voiceconv.models.vocoders import load_vocoder
from voiceconv.models.vocoders.f0_response import PROBE_CENTS, probe_f0_response
from voiceconv.models.vocoders.hifigan import HiFiGANUniversal
from voiceconv.models.vocoders.nsf import NSF_LITE, NSF_SMALL, NSF_V1, NSFHiFiGAN, SineSource
from voiceconv.vocoder.data import AudioCrops, SegmentAudio, VocoderData
from voiceconv.vocoder.export import export_vocoder

SMALL = REPO / "recipes" / "common" / "conf" / "nsf_hifigan_small.yaml"


def test_the_sine_source_is_exactly_on_the_given_pitch():
    config = FeatureConfig()
    # A sung-like contour: a glide from 180 to 420 Hz with vibrato, then a rest.
    t = np.arange(400) * config.hop_length / config.sample_rate
    f0 = 180 * (420 / 180) ** (t / t[-1]) * 2 ** (0.3 * np.sin(2 * np.pi * 5.5 * t) / 12)
    f0[300:340] = 0
    source = SineSource(NSF_V1, config.sample_rate, config.hop_length)
    with torch.no_grad():
        sines = source.harmonics(torch.tensor(f0, dtype=torch.float32)[None])[0].numpy()
    # A harmonic tone (1/k amplitudes): Harvest calls a lone sine unvoiced.
    tone = (sines / np.arange(1, sines.shape[0] + 1)[:, None]).sum(0)
    measured = f0_track(tone.astype(np.float64), config.sample_rate)  # every 5 ms
    expected = np.interp(np.arange(len(measured)) * 0.005, t + config.hop_length / 2 /
                         config.sample_rate, f0)
    m = f0_metrics(np.where(expected > 0, expected, 0), measured)
    assert m.median_cents < 5 and m.gross_pitch_error < 0.02


@pytest.fixture(scope="module")
def mel_f0(prepared):
    from data_prep.prepared import load_features
    from voiceconv.core.fileio import read_jsonl

    rows = read_jsonl(prepared.out_dir / "manifest.jsonl")
    feats = [load_features(prepared.out_dir / r["features"]) for r in rows[:3]]
    mel = np.concatenate([f["mel"] for f in feats], axis=1)
    f0 = np.concatenate([f["f0"] for f in feats])
    return torch.from_numpy(mel)[None], torch.from_numpy(f0)[None]


def test_v1_initialised_from_universal_renders_as_the_universal_hifigan(mel_f0):
    mel, f0 = mel_f0
    nsf = NSFHiFiGAN(NSF_V1, FeatureConfig())
    copied, total = nsf.generator.init_from_universal()
    assert copied == total  # every universal tensor has its place in the NSF filter
    nsf.generator.remove_weight_norm()
    ours = nsf.eval().render(mel[..., :200], f0[..., :200])
    universal = HiFiGANUniversal().render(mel[..., :200], f0[..., :200])
    assert torch.allclose(ours, universal, atol=1e-5)
    # With the injections at PyTorch's initial scale the source is heard from the start.
    nsf = NSFHiFiGAN(NSF_V1, FeatureConfig())
    nsf.generator.init_from_universal(injection_scale=1.0)
    nsf.generator.remove_weight_norm()
    sourced = nsf.eval().render(mel[..., :200], f0[..., :200])
    assert (sourced - universal).abs().mean() > 0.1 * universal.abs().mean()


def test_the_lite_filter_takes_each_universal_stack_of_its_stage_and_kernel():
    """The lite config keeps only V1's kernel-3 stacks: the flat index of a stack differs
    (lite stage 1 is `resblocks.1`, V1's kernel-3 stack of stage 1 is `resblocks.3`), so
    matching by position would copy nothing of the stacks after the first."""
    lite = NSFHiFiGAN(NSF_LITE, FeatureConfig()).generator
    copied, _ = lite.init_from_universal()
    filter_tensors = [k for k in lite.state_dict() if not k.startswith(("source.", "noise_"))]
    assert copied == len(filter_tensors)
    v1 = NSFHiFiGAN(NSF_V1, FeatureConfig()).generator
    v1.init_from_universal()
    for stage in range(4):
        for name, value in lite.resblocks[stage].state_dict().items():
            assert torch.equal(value, v1.resblocks[3 * stage].state_dict()[name]), (stage, name)
    assert torch.equal(lite.ups[3].parametrizations.weight.original1,
                       v1.ups[3].parametrizations.weight.original1)


def test_the_f0_probe_tells_a_vocoder_that_follows_f0_from_one_that_ignores_it():
    world = load_vocoder("world", FeatureConfig())
    assert abs(probe_f0_response(world) - PROBE_CENTS) < 15
    nsf = NSFHiFiGAN(NSF_V1, FeatureConfig())
    nsf.generator.init_from_universal()  # the injections start at zero: F0 is not used yet
    nsf.generator.remove_weight_norm()
    assert abs(probe_f0_response(nsf.eval())) < 15


def test_chunked_rendering_equals_one_shot(mel_f0):
    """Exact in fp32 (bf16, which `auto` picks on some CPUs, rounds by shape)."""
    mel, f0 = mel_f0
    nsf = NSFHiFiGAN(NSF_SMALL, FeatureConfig()).eval().with_precision("fp32")
    with torch.no_grad():  # make the source matter more than it does at initialisation
        for conv in nsf.generator.noise_convs:
            conv.weight.normal_(0, 0.5)
    one_shot = nsf.render(mel, f0, chunk_frames=None)
    chunked = nsf.render(mel, f0, chunk_frames=150)
    assert mel.shape[-1] > 3 * 150
    # A last chunk shorter than the cross-fade joins the one before it.
    tiny_tail = mel.shape[-1] - 1
    assert torch.allclose(nsf.render(mel, f0, chunk_frames=tiny_tail), one_shot, atol=1e-4)
    assert (one_shot - chunked).abs().max() <= 1e-4


def test_renders_through_channels_last_convolutions_what_training_computes(mel_f0):
    """Without autograd a CPU renders the 1-D convolutions as 2-D ones over channels-last
    views (models/vocoders/channels_last.py): the same audio as the 1-D path that training
    runs, with the channels innermost from layer to layer, so no layer copies its input."""
    mel, f0 = mel_f0
    mel, f0 = mel[..., :120], f0[..., :120]
    nsf = NSFHiFiGAN(NSF_SMALL, FeatureConfig()).eval().with_precision("fp32")
    nsf.generator.remove_weight_norm()
    with torch.no_grad():  # make the source matter more than it does at initialisation
        for conv in nsf.generator.noise_convs:
            conv.weight.normal_(0, 0.5)
    rendered = nsf.synthesise(mel, f0)
    with torch.enable_grad():
        trained_path = nsf.synthesise(mel, f0).detach()
    assert (rendered - trained_path).abs().max() <= 1e-5 * trained_path.abs().max()
    with torch.no_grad():
        inside = nsf.generator.ups[1](nsf.generator.ups[0](nsf.generator.conv_pre(mel)))
    assert inside.stride(1) == 1 and inside.shape[1] > 1


@pytest.mark.parametrize("config", [NSF_LITE, NSF_V1], ids=["lite", "v1"])
def test_a_mel_frame_reaches_no_further_than_the_context(config):
    """The context each chunk is rendered with covers the generator's reach, so chunks join
    as one shot renders, and is not much wider (every context frame is rendered again)."""
    vocoder = NSFHiFiGAN(config, FeatureConfig()).eval().with_precision("fp32")
    context, hop, frame = vocoder.context_frames, FeatureConfig().hop_length, 60
    mel = torch.randn(1, FeatureConfig().n_mels, 2 * frame) - 5
    f0 = torch.full((1, 2 * frame), 220.0)
    changed = mel.clone()
    changed[..., frame] += 3
    with torch.no_grad():
        moved = (vocoder.synthesise(changed, f0) - vocoder.synthesise(mel, f0))[0].abs() > 0
    reached = moved.nonzero()[:, 0] / hop - frame  # in frames, from the changed frame's start
    assert -context <= float(reached.min()) and float(reached.max()) <= context + 1
    assert max(-float(reached.min()), float(reached.max())) > context - 4


def test_long_renders_run_in_windows_of_one_shape(mel_f0, monkeypatch):
    """A neural vocoder sets up its convolutions once per input shape; chunks of a long
    input, its ends included, are all rendered through windows of one length."""
    mel, f0 = mel_f0
    nsf = NSFHiFiGAN(NSF_LITE, FeatureConfig()).eval().with_precision("fp32")
    lengths, synthesise = [], nsf.synthesise

    def record(mel, f0, *args):
        lengths.append(mel.shape[-1])
        return synthesise(mel, f0, *args)

    monkeypatch.setattr(nsf, "synthesise", record)
    chunk = 100
    assert mel.shape[-1] % chunk > 10 and mel.shape[-1] > 3 * chunk  # a short last chunk
    nsf.render(mel, f0, chunk_frames=chunk)
    assert lengths == [chunk + 2 * nsf.context_frames] * math.ceil(mel.shape[-1] / chunk)


def test_pitch_shifted_crops_move_f0_and_audio_but_keep_the_mel(prepared):
    def crops(shift_prob: float) -> VocoderData:
        data = VocoderData(str(prepared.out_dir), crop_frames=64, batch_size=8, val_segments=1,
                           pitch_shift_prob=shift_prob, pitch_shift_semitones=4)
        data.setup("fit")
        return data

    batch, plain = crops(0.5).train_set.batch(3), crops(0.0).train_set.batch(3)
    assert torch.equal(batch["mel"], plain["mel"])  # same crops; the mel given is untouched
    shifted = batch["shifted"]
    assert 0 < shifted.sum() < len(shifted)
    assert torch.equal(batch["audio"][~shifted], plain["audio"][~shifted])
    assert torch.equal(batch["f0"][~shifted], plain["f0"][~shifted])
    rate = FeatureConfig().sample_rate
    for i in torch.nonzero(shifted).flatten().tolist():
        voiced = plain["f0"][i] > 0
        cents = 1200 * torch.log2(batch["f0"][i][voiced] / plain["f0"][i][voiced])
        assert cents.std() < 1e-3 and 0 < cents.abs()[0] <= 400
        # The audio moved with the F0 (harvest on the crops, frames voiced in both).
        before, after = (f0_track(x[i].numpy().astype(np.float64), rate)
                         for x in (plain["audio"], batch["audio"]))
        both = (before > 0) & (after > 0)
        moved = np.median(1200 * np.log2(after[both] / before[both]))
        assert abs(moved - cents[0].item()) < 15, (moved, cents[0].item())
    assert all(torch.equal(a, b) for a, b in zip(batch.values(), crops(0.5).train_set.batch(3)
                                                 .values(), strict=True))


def test_singer_balance_shares_the_crops_between_singers_of_unequal_minutes(prepared):
    """One PJS song beside two of NIT-F001: by default each crop is alike, so NIT-F001 has
    about two thirds of the crops; balanced (1) each singer has half; always the same batches
    for the same step."""
    rows = sorted(read_manifest(prepared.out_dir), key=lambda r: r["id"])
    one_pjs_song = min(r["source"] for r in rows if r["singer"] == "pjs")
    rows = [r for r in rows if r["singer"] == "nit_f001" or r["source"] == one_pjs_song]
    audio = SegmentAudio(prepared.out_dir, rows, 32, FeatureConfig().hop_length,
                         FeatureConfig().sample_rate)
    counts = torch.bincount(audio.start_singers).double()
    assert counts[0] > 1.5 * counts[1]  # NIT-F001 first, with the more audio

    def shares(balance: float) -> torch.Tensor:
        crops = AudioCrops(audio, 8, seed=0, singer_balance=balance)
        assert all(torch.equal(a, b) for a, b in zip(crops.batch(7).values(),
                                                     crops.batch(7).values(), strict=True))
        chosen = torch.cat([crops.choose(crops.batch_rng(k)) for k in range(300)])
        return torch.bincount(audio.start_singers[chosen], minlength=2).double() / len(chosen)

    assert torch.allclose(shares(0.0), counts / counts.sum(), atol=0.04)
    assert torch.allclose(shares(1.0), torch.tensor([0.5, 0.5], dtype=torch.float64),
                          atol=0.04)


@pytest.fixture(scope="module")
def vocoder_config(prepared, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vocoder")
    config = {
        "data": {"class_path": "voiceconv.vocoder.data.VocoderData", "init_args": {
            "prep_dir": str(prepared.out_dir), "crop_frames": 8, "batch_size": 2,
            "val_segments": 1, "val_max_frames": 32, "pitch_shift_prob": 0.5}},
        "model": {"init_args": {"discriminator": {"periods": [2, 3], "period_channels": 2,
                                                  "resolution_channels": 2},
                                "nsf": {"upsample_initial_channel": 32}}},
        "trainer": {"max_steps": 4, "val_check_interval": 2, "check_val_every_n_epoch": None,
                    "log_every_n_steps": 1, "enable_progress_bar": False,
                    "accelerator": "cpu", "enable_model_summary": False},
        "experiments_root": str(folder / "checkpoints"), "checkpoint_every_n_steps": 2,
        "wandb": False,
    }
    path = folder / "vocoder.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fit(config: Path, *args: str) -> int:
    return run_command("fit", ["--config", str(SMALL), "--config", str(config), *args])


def generator_state(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_plain(str(path))["state_dict"].items()
            if k.startswith("generator.")}


def experiments_root(config: Path) -> Path:
    return Path(yaml.safe_load(config.read_text())["experiments_root"])


@pytest.fixture(scope="module")
def trained(vocoder_config) -> Path:
    """The last checkpoint of 4 training steps."""
    assert fit(vocoder_config, "--experiment", "straight") == 0
    return experiments_root(vocoder_config) / "straight" / "checkpoints" / "last.ckpt"


def test_trains_resumes_exactly_and_its_checkpoint_is_a_vocoder(vocoder_config, trained,
                                                                 mel_f0):
    root = experiments_root(vocoder_config)
    assert fit(vocoder_config, "--experiment", "resumed", "--trainer.max_steps", "2") == 0
    assert fit(vocoder_config, "--experiment", "resumed", "--ckpt_path", "last") == 0
    straight = generator_state(trained)
    resumed = generator_state(root / "resumed" / "checkpoints" / "last.ckpt")
    assert max((straight[k] - resumed[k]).abs().max().item() for k in straight) <= 1e-6
    metrics = (root / "straight" / "metrics.csv").read_text()
    for name in ("train/g_mel_l1", "train/g_feature_matching", "train/g_adversarial",
                 "train/d_loss", "val/mel_l1", "val/mcd", "val/f0_response_cents"):
        assert name in metrics
    # The checkpoint loads (weights_only) as a vocoder by path, with its feature config.
    vocoder = load_vocoder(str(trained), FeatureConfig())
    mel, f0 = mel_f0
    assert vocoder.name == "nsf-hifigan" and vocoder.uses_f0
    assert vocoder.render(mel[..., :40], f0[..., :40]).shape == (1, 40 * 256)
    with pytest.raises(VoiceconvError, match="hop_length: vocoder nsf-hifigan 256 vs"):
        load_vocoder(str(trained), FeatureConfig(hop_length=128))


def test_a_trained_vocoder_starts_a_new_run_and_a_misfit_is_refused(vocoder_config, trained,
                                                                     capsys):
    # At a negligible learning rate, two steps leave the weights where init_from put them.
    assert fit(vocoder_config, "--experiment", "tuned", "--trainer.max_steps", "2",
               "--model.init_args.init_from", str(trained),
               "--model.init_args.optimizer.lr", "1e-12") == 0
    source = load_plain(str(trained))
    tuned = load_plain(str(experiments_root(vocoder_config) / "tuned" / "checkpoints"
                           / "last.ckpt"))
    assert tuned["global_step"] == 2  # a new run, not the old one resumed
    assert tuned["state_dict"].keys() == source["state_dict"].keys()
    assert any(k.startswith("discriminator.") for k in source["state_dict"])
    assert max((source["state_dict"][k] - v).abs().max().item()
               for k, v in tuned["state_dict"].items()) < 1e-9
    capsys.readouterr()
    assert fit(vocoder_config, "--experiment", "misfit", "--model.init_args.init_from",
               str(trained), "--model.init_args.nsf.upsample_initial_channel", "16") == 2
    assert "nsf.upsample_initial_channel: init_from 32 vs model 16" in capsys.readouterr().err


def test_a_long_mel_renders_in_chunks_in_bounded_memory(mel_f0, tmp_path):
    """In a fresh process: peak RSS while rendering 4 minutes, above what the process held
    before, stays far below what one-shot rendering needs (its 8-channel full-rate activations
    are 170 MB per tensor, the float64 phases of 8 harmonics 340 MB: 1.1-1.3 GB growth,
    measured). The output itself and its cross-fade weights take 42 MB. Chunked, the growth
    measured 157-326 MB from run to run."""
    mel, f0 = mel_f0
    frames = 4 * 60 * 22050 // 256
    reps = frames // mel.shape[-1] + 1
    torch.save({"mel": mel.repeat(1, 1, reps)[..., :frames].clone(),
                "f0": f0.repeat(1, reps)[..., :frames].clone()}, tmp_path / "long.pt")
    script = f"""
import resource, torch
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.models.vocoders.nsf import NSF_SMALL, NSFHiFiGAN
data = torch.load({str(tmp_path / "long.pt")!r}, weights_only=True)
vocoder = NSFHiFiGAN(NSF_SMALL, FeatureConfig()).eval()
vocoder.generator.remove_weight_norm()  # as loaded from a checkpoint (and 1.6x faster)
vocoder.render(data["mel"][..., :4096], data["f0"][..., :4096])  # warm-up: one chunk's worth
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
audio = vocoder.render(data["mel"], data["f0"], chunk_frames=2048)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert audio.shape == (1, {frames} * 256), audio.shape
assert torch.isfinite(audio).all()
print((after - before) // 1024)
"""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=600, env={"PYTHONPATH": str(REPO),
                                                         "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    growth_mb = int(result.stdout.strip().splitlines()[-1])
    print(f"4-minute render: peak RSS grew by {growth_mb} MB")
    assert growth_mb < 600


def test_an_exported_vocoder_renders_as_its_checkpoint_and_starts_a_fine_tune(
        vocoder_config, trained, mel_f0, tmp_path, monkeypatch):
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    info = export_vocoder(str(trained), str(shipped / "nsf-test.pt"))
    assert info["step"] == 4
    assert (shipped / "nsf-test.pt").stat().st_size < trained.stat().st_size / 3
    monkeypatch.setenv("VOICECONV_PRETRAINED", str(shipped))
    mel, f0 = mel_f0
    renders = []
    for name in (str(trained), "pretrained:nsf-test"):
        torch.manual_seed(0)  # the noise of unvoiced frames
        renders.append(load_vocoder(name, FeatureConfig()).render(mel[..., :40], f0[..., :40]))
    assert torch.equal(*renders)
    with pytest.raises(VoiceconvError, match="no pretrained entry 'nope'.*shipped: nsf-test"):
        load_vocoder("pretrained:nope", FeatureConfig())
    # A fine-tune starts from the shipped generator; its discriminator starts fresh.
    assert fit(vocoder_config, "--experiment", "from-shipped", "--trainer.max_steps", "2",
               "--model.init_args.init_from", "pretrained:nsf-test",
               "--model.init_args.optimizer.lr", "1e-12") == 0
    tuned = generator_state(experiments_root(vocoder_config) / "from-shipped" / "checkpoints"
                            / "last.ckpt")
    source = generator_state(trained)
    assert max((source[k] - v).abs().max().item() for k, v in tuned.items()) < 1e-9
