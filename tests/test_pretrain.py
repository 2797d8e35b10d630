"""Encoder pretraining (`voiceconv pretrain`) on real singing and fine-tuning a pair from its
base: it learns to fill in masked frames, the base loads into both generators, a misfit base
is refused by name, freezing really freezes, and resuming in or after the frozen phase equals
uninterrupted training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import REPO, prep_excerpts
from tests.test_cyclegan import SMALL, exp_dir, last_values, max_difference, metrics
from voiceconv.cli import run_command
from voiceconv.fit.transfer import load_base
from voiceconv.models import GeneratorConfig
from voiceconv.models.generator import SMALL as SMALL_GENERATOR
from voiceconv.pretrain.encoder import EncoderPretraining, ReverseGradient, load_pretraining
from voiceconv.pretrain.export import main as export_main
from voiceconv.pretrain.pool import SingerPoolData
from voiceconv.pretrain.singer_probe import singer_probe_accuracy

PRETRAIN_SMALL = REPO / "recipes" / "common" / "conf" / "pretrain_small.yaml"


# A pool of 2.3 minutes: 20 s of seven bundled songs, two singers (F0 by dio: only mels count).
POOL = [(singer, name, 1.0, 20.0) for singer, name in [
    ("nit_f001", "nitech_jp_song070_f001_004.flac"),
    ("nit_f001", "nitech_jp_song070_f001_007.flac"),
    ("nit_f001", "nitech_jp_song070_f001_029.flac"), ("pjs", "pjs001_song.flac"),
    ("pjs", "pjs002_song.flac"), ("pjs", "pjs003_song.flac"), ("pjs", "pjs004_song.flac")]]


@pytest.fixture(scope="module")
def pool_prep(tmp_path_factory) -> Path:
    return prep_excerpts(tmp_path_factory, "pool", POOL)


@pytest.fixture(scope="module")
def pretrain_config(pool_prep, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pretrain")
    config = {
        "data": {"class_path": "voiceconv.pretrain.pool.SingerPoolData", "init_args": {
            "prep_dirs": [str(pool_prep)], "crop_frames": 32, "batch_size": 8,
            "val_segments": 1, "val_max_frames": 128}},
        "trainer": {"max_steps": 150, "val_check_interval": 50, "check_val_every_n_epoch": None,
                    "log_every_n_steps": 5, "enable_progress_bar": False,
                    "accelerator": "cpu", "enable_model_summary": False},
        "experiments_root": str(folder / "checkpoints"), "experiment": "base",
        "checkpoint_every_n_steps": 50, "preview_every_n_steps": 50, "wandb": False,
        "model": {"init_args": {"lr": 0.002}},  # a short run: learn fast
    }
    path = folder / "pretrain.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def base(pretrain_config) -> Path:
    assert run_command("pretrain", ["--config", str(PRETRAIN_SMALL),
                                    "--config", str(pretrain_config)]) == 0
    return exp_dir(pretrain_config, "base") / "checkpoints" / "last.ckpt"


def test_pretraining_learns_to_fill_in_masked_frames(base, pool_prep):
    out = base.parent.parent
    rows = metrics(out)
    for key in ("train/loss", "train/l1", "train/l1_masked", "grad_norm/generator",
                "lr/generator", "val/l1", "val/l1_masked"):
        values = last_values(rows, key)
        assert values and all(math.isfinite(v) for v in values), key
    assert len(last_values(rows, "val/l1_masked")) == 3

    # Against its untrained self, on the same held-out segments under the same masks.
    data = SingerPoolData([str(pool_prep)], crop_frames=32, val_max_frames=128)
    data.setup("fit")
    trained = load_pretraining(base)
    untrained = EncoderPretraining(generator=trained.generator.cfg)
    with torch.no_grad():
        before, after = ([m.held_out_losses(item) for item in data.val_set]
                         for m in (untrained, trained))
    # Whole segments. (The hidden frames alone improve too slowly for a test: on the 41-minute
    # pool, 750 steps took their L1 from 0.66 to 0.60; see the transfer-learning journal.)
    b, a = (float(np.mean([float(p["l1"]) for p in parts])) for parts in (before, after))
    assert a < 0.95 * b, (b, a)
    assert (out / "previews" / "step_0000050" / "mels.png").stat().st_size > 1000
    assert (out / "previews" / "step_0000050" / "reconstruction.flac").is_file()
    checkpoint = torch.load(base, weights_only=True)
    assert checkpoint["global_step"] == 150
    assert checkpoint["hyper_parameters"]["feature_config"]["n_mels"] == 80


def test_the_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(3, 4, requires_grad=True)
    (ReverseGradient.apply(x, 0.5) * torch.arange(4.0)).sum().backward()
    assert torch.equal(x.grad, -0.5 * torch.arange(4.0).expand(3, 4))


def test_singer_adversarial_pretraining_hides_the_singer(pretrain_config, base, pool_prep):
    """The same pretraining, twice as long (at 150 steps the adversary's effect was within the
    probe's noise), with the reversed singer classifier: a fresh linear probe tells
    the two singers apart on held-out segments much worse from its encoding than from the
    plain base's, and it still learns to reconstruct."""
    assert run_command("pretrain", ["--config", str(PRETRAIN_SMALL),
                                    "--config", str(pretrain_config),
                                    "--experiment", "adversarial",
                                    "--model.init_args.singer_adversarial", "1.0",
                                    "--trainer.max_steps", "300"]) == 0
    path = exp_dir(pretrain_config, "adversarial") / "checkpoints" / "last.ckpt"
    rows = metrics(path.parent.parent)
    for key in ("train/singer_ce", "train/singer_accuracy", "val/singer_accuracy"):
        values = last_values(rows, key)
        assert values and all(math.isfinite(v) for v in values), key

    data = SingerPoolData([str(pool_prep)], crop_frames=32, val_max_frames=128)
    data.setup("fit")
    train = [[s.mel for s in singer.segments] for singer in data.singers]
    test = [[item["mel"].numpy() for item in data.val_set if item["singer"] == i]
            for i in range(len(train))]
    adversarial, plain = load_pretraining(path), load_pretraining(base)
    assert adversarial.hparams.n_singers == 2
    shown, hidden = (singer_probe_accuracy(m.generator.encoder, train, test)
                     for m in (plain, adversarial))
    assert hidden < shown - 0.1, (shown, hidden)
    untrained = EncoderPretraining(generator=plain.generator.cfg)
    with torch.no_grad():
        before, after = (np.mean([float(m.held_out_losses(item)["l1"]) for item in data.val_set])
                         for m in (untrained, adversarial))
    assert after < 0.95 * before, (before, after)
    # Only the encoder goes to a pair; the singer parts stay behind.
    assert load_base(str(path), SMALL_GENERATOR, None).encoder.keys() == \
        load_base(str(base), SMALL_GENERATOR, None).encoder.keys()


def test_pool_sampling_is_singer_balanced_and_honours_exclusions(prepared):
    data = SingerPoolData([str(prepared.out_dir)], crop_frames=32, batch_size=64,
                          exclude=["pjs001"], seed=3)
    data.setup("fit")
    assert len(data.singers) == 2
    assert not any("pjs001" in s.source for singer in data.singers
                   for s in singer.segments)
    who = torch.cat([data.train_set.batch(k)["singer"] for k in range(20)])
    share = float(who.float().mean())
    assert 0.4 < share < 0.6, share  # one singer lost a song, both still drawn equally
    again = SingerPoolData([str(prepared.out_dir)], crop_frames=32, batch_size=64,
                           exclude=["pjs001"], seed=3)
    again.setup("fit")
    np.testing.assert_array_equal(again.train_set.batch(7)["mel"], data.train_set.batch(7)["mel"])


def fine_tune(fit_config: Path, base: Path | str, name: str, steps: int, *extra: str) -> Path:
    """Fit the demo pair from `base` to `steps` (resuming experiment `name` if it exists; the
    experiments root is shared with test_cyclegan.py, so names must not clash)."""
    assert run_command("fit", [
        "--config", str(SMALL), "--config", str(fit_config), "--experiment", name,
        "--trainer.max_steps", str(steps), "--checkpoint_every_n_steps", "1",
        "--preview_every_n_steps", "0", "--trainer.val_check_interval", "100",
        "--trainer.limit_val_batches", "0", "--ckpt_path", "last",
        "--model.init_args.init_from", str(base),
        "--model.init_args.transfer.freeze_encoder_steps", "3",
        "--model.init_args.transfer.encoder_lr_scale", "0.1", *extra]) == 0
    return exp_dir(fit_config, name) / "checkpoints" / "last.ckpt"


def part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def generators(checkpoint: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(("g_ab.", "g_ba."))}


def test_fine_tune_freezes_unfreezes_and_resumes_in_the_right_phase(fit_config, base):
    """Encoders frozen until step 3 of 5: bit-identical to the base and without optimizer
    state while frozen, moving after; resumed inside (step 2) or after (step 4) the frozen
    phase, the run equals the uninterrupted one."""
    base_state = torch.load(base, weights_only=True)["state_dict"]
    base_encoder = part(base_state, "generator.encoder.")
    frozen = torch.load(fine_tune(fit_config, base, "ft-in-phase", 2), weights_only=True)
    for g in ("g_ab", "g_ba"):
        assert max_difference(part(frozen["state_dict"], f"{g}.encoder."), base_encoder) == 0.0
    opt_g = frozen["optimizer_states"][0]
    encoder_ids = set(opt_g["param_groups"][1]["params"])
    assert opt_g["param_groups"][1]["lr"] == pytest.approx(0.1 * opt_g["param_groups"][0]["lr"])
    assert encoder_ids and not encoder_ids & set(opt_g["state"])  # no Adam state for them

    straight = torch.load(fine_tune(fit_config, base, "ft-straight", 5), weights_only=True)
    assert encoder_ids <= set(straight["optimizer_states"][0]["state"])
    for g in ("g_ab", "g_ba"):
        assert max_difference(part(straight["state_dict"], f"{g}.encoder."), base_encoder) > 0

    resumed = torch.load(fine_tune(fit_config, base, "ft-in-phase", 5), weights_only=True)
    assert max_difference(generators(straight), generators(resumed)) <= 1e-6
    fine_tune(fit_config, base, "ft-after-phase", 4)
    resumed = torch.load(fine_tune(fit_config, base, "ft-after-phase", 5), weights_only=True)
    assert max_difference(generators(straight), generators(resumed)) <= 1e-6


def test_an_exported_base_is_the_generator_alone_and_loads_by_name(fit_config, base, tmp_path,
                                                                  monkeypatch):
    """`voiceconv.pretrain.export` keeps the generator and what a pair checks, drops the
    optimizer and RNG states; a fit given `pretrained:<name>` starts from those weights."""
    out = tmp_path / "shipped" / "tiny-base.pt"
    assert export_main([str(base), str(out)]) == 0
    assert out.stat().st_size < base.stat().st_size / 2
    shipped, original = (torch.load(p, weights_only=True) for p in (out, base))
    assert set(shipped) == {"hyper_parameters", "state_dict", "global_step"}
    assert shipped["global_step"] == 150
    assert max_difference(part(shipped["state_dict"], "generator."),
                          part(original["state_dict"], "generator.")) == 0.0
    assert load_pretraining(str(out)).generator.cfg == load_pretraining(base).generator.cfg

    monkeypatch.setenv("VOICECONV_PRETRAINED", str(out.parent))
    fitted = torch.load(fine_tune(fit_config, "pretrained:tiny-base", "ft-by-name", 1),
                        weights_only=True)
    for g in ("g_ab", "g_ba"):
        assert max_difference(part(fitted["state_dict"], f"{g}.encoder."),
                              part(shipped["state_dict"], "generator.encoder.")) == 0.0


def test_decoders_load_only_where_the_whole_generator_config_matches(base):
    hp = torch.load(base, weights_only=True)["hyper_parameters"]
    same = GeneratorConfig(**hp["generator"])
    assert load_base(str(base), same, None).decoder is not None
    weights = load_base(str(base), SMALL_GENERATOR, None)  # the CycleGAN's: global residual
    assert weights.decoder is None and weights.encoder
    assert "global_residual: base False vs model True" in weights.note


def test_a_base_that_does_not_fit_is_refused_naming_the_fields(fit_config, base, tmp_path,
                                                               capsys):
    checkpoint = torch.load(base, weights_only=True)
    checkpoint["hyper_parameters"]["generator"]["residual_channels"] = 64
    checkpoint["hyper_parameters"]["feature_config"]["hop_length"] = 128
    wrong = tmp_path / "wrong.ckpt"
    torch.save(checkpoint, wrong)
    capsys.readouterr()
    assert run_command("fit", ["--config", str(SMALL), "--config", str(fit_config),
                               "--experiment", "wrong-base", "--trainer.max_steps", "1",
                               "--model.init_args.init_from", str(wrong)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "residual_channels: base 64 vs model 128" in err, err

    checkpoint["hyper_parameters"]["generator"]["residual_channels"] = 128
    torch.save(checkpoint, wrong)
    assert run_command("fit", ["--config", str(SMALL), "--config", str(fit_config),
                               "--experiment", "wrong-features", "--trainer.max_steps", "1",
                               "--model.init_args.init_from", str(wrong)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "hop_length" in err and "128" in err and "256" in err, err

    # A base pretrained on mels does not fit a pair that converts spectral envelopes.
    assert run_command("fit", ["--config", str(SMALL), "--config", str(fit_config),
                               "--experiment", "wrong-representation", "--trainer.max_steps",
                               "1", "--data.init_args.spectral_envelope", "true",
                               "--model.init_args.init_from", str(base)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "pretrained on mels, this model converts spectral envelopes" in err, err

    assert run_command("fit", ["--config", str(SMALL), "--config", str(fit_config),
                               "--experiment", "no-base", "--trainer.max_steps", "1",
                               "--model.init_args.init_from", str(tmp_path / "none.ckpt")]) == 2
    assert "none.ckpt" in capsys.readouterr().err
