"""CycleGAN-VC networks on real mel spectrograms: shapes, the encoder seam, FIF masking,
and that generator and discriminator actually learn."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.conftest import read_excerpt
from voiceconv.core.audio import resample
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.features import LogMelSpectrogram
from voiceconv.fit import losses
from voiceconv.models import Generator, PatchDiscriminator, fif_mask
from voiceconv.models.generator import PAPER, SMALL
from voiceconv.models.layers import SingleOutputConv2d, _SingleOutputConv, glu

CROP = 64  # frames, about 0.74 s


@pytest.fixture(scope="module")
def mel_crops() -> torch.Tensor:
    """(16, 80, 64) normalised log-mel crops of real singing."""
    config = FeatureConfig()
    x, sr = read_excerpt("pjs", "pjs001_song.flac", 2.0, 14.0)
    audio = torch.from_numpy(resample(x, sr, config.sample_rate))
    with torch.inference_mode():
        mel = LogMelSpectrogram(config)(audio[None])[0]
    mel = (mel - mel.mean()) / mel.std()
    starts = torch.linspace(0, mel.shape[1] - CROP, 16).long()
    return torch.stack([mel[:, s: s + CROP] for s in starts]).clone()


@pytest.mark.parametrize("cfg", [SMALL, PAPER], ids=["small", "paper"])
def test_generator_maps_mel_to_mel_and_encoder_quarters_time(cfg, mel_crops):
    g = Generator(cfg).eval()
    x = mel_crops[:2]
    with torch.no_grad():
        y = g(x)
        content = g.encoder(torch.cat([x[:, None], torch.ones_like(x[:, None])], dim=1))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert content.shape == (2, cfg.residual_channels, CROP // 4)
    scores = PatchDiscriminator(channels=16)(y)
    assert scores.shape[:2] == (2, 1) and scores.numel() > 2  # one score per patch


def test_a_loaded_encoder_computes_the_same_content(mel_crops):
    torch.manual_seed(0)
    pretrained, fresh = Generator(SMALL).eval(), Generator(SMALL).eval()
    x = torch.cat([mel_crops[:2, None], torch.ones_like(mel_crops[:2, None])], dim=1)
    with torch.no_grad():
        assert not torch.allclose(pretrained.encoder(x), fresh.encoder(x))
        fresh.encoder.load_state_dict(pretrained.encoder.state_dict())
        assert torch.equal(pretrained.encoder(x), fresh.encoder(x))


def test_fif_mask_hides_one_seeded_span():
    masks = fif_mask(8, 100, 25, torch.Generator().manual_seed(3))
    again = fif_mask(8, 100, 25, torch.Generator().manual_seed(3))
    assert torch.equal(masks, again) and masks.shape == (8, 1, 1, 100)
    for mask in masks[:, 0, 0]:
        hidden = torch.nonzero(mask == 0).flatten()
        assert len(hidden) <= 25
        if len(hidden):
            assert hidden[-1] - hidden[0] + 1 == len(hidden)  # one contiguous span


def test_hidden_frames_do_not_reach_the_generator(mel_crops):
    g = Generator(SMALL).eval()
    mask = torch.ones(1, 1, 1, CROP)
    mask[..., 20:30] = 0
    x = mel_crops[:1]
    altered = x.clone()
    altered[..., 20:30] = torch.randn(1, 80, 10) * 5
    with torch.no_grad():
        assert torch.equal(g(x, mask), g(altered, mask))


def test_generator_learns_to_fill_in_masked_frames(mel_crops):
    """The filling-in-frames task: loss on hidden frames must fall well below its start."""
    torch.manual_seed(0)
    crops = mel_crops[::2]  # 8 crops across the song
    # Without the global residual, whose zero-initialised output layer starts every frame
    # (hidden ones too) from the input and so learns filling-in more slowly than 30 steps.
    g = Generator(dataclasses.replace(SMALL, global_residual=False))
    optimizer = torch.optim.Adam(g.parameters(), lr=2e-3)
    rng = torch.Generator().manual_seed(0)

    def masked_error() -> float:
        """Mean error on the hidden frames only: what the generator had to fill in."""
        with torch.no_grad():
            mask = fif_mask(len(crops), CROP, 16, torch.Generator().manual_seed(99))
            hidden = (1 - mask).expand_as(crops[:, None])[:, 0]
            return float(((g(crops, mask) - crops).abs() * hidden).sum() / hidden.sum())

    before = masked_error()
    for _ in range(30):
        loss = losses.cycle_consistency(crops, g(crops, fif_mask(len(crops), CROP, 16, rng)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert masked_error() < 0.5 * before


def test_discriminator_learns_real_from_generated(mel_crops):
    torch.manual_seed(0)
    # An untrained generator without the global residual (which would start as the identity).
    g = Generator(dataclasses.replace(SMALL, global_residual=False)).eval()
    d = PatchDiscriminator(channels=16, downsamples=2)
    with torch.no_grad():
        fake = g(mel_crops)
    optimizer = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    start = losses.lsgan_discriminator(d(mel_crops), d(fake))["total"].item()
    for _ in range(40):
        parts = losses.lsgan_discriminator(d(mel_crops), d(fake))
        optimizer.zero_grad()
        parts["total"].backward()
        optimizer.step()
    parts = losses.lsgan_discriminator(d(mel_crops), d(fake))
    assert parts["total"].item() < 0.25 * start
    assert losses.lsgan_generator(d(fake)).item() > 0.5  # the generator is now being caught
    assert np.isfinite([v.item() for v in parts.values()]).all()


def test_cycle_and_identity_losses_are_zero_only_for_equal_inputs(mel_crops):
    x = mel_crops[:2]
    assert losses.cycle_consistency(x, x) == 0 and losses.identity_mapping(x, x) == 0
    assert losses.cycle_consistency(x, x + 0.1).item() == pytest.approx(0.1, rel=1e-5)


def test_the_faster_layers_give_the_plain_layers_numbers(mel_crops):
    """SingleOutputConv2d (its FFT form on the CPU, its conv2d form elsewhere) and the
    written-out GLU, on channels-last activations as the generator runs them, against
    nn.Conv2d and nn.functional.glu."""
    torch.manual_seed(0)
    x = torch.randn(6, 16, 80, 64).contiguous(memory_format=torch.channels_last)
    fast = SingleOutputConv2d(16, (5, 15))
    plain = torch.nn.Conv2d(16, 1, (5, 15), padding=(2, 7))
    plain.load_state_dict(fast.state_dict())
    grad = mel_crops[:6, None]

    def conv2d_form(x_):
        return _SingleOutputConv.apply(x_, fast.weight, fast.bias, fast.padding)

    results = []
    for conv, weights in ((fast, fast), (conv2d_form, fast), (plain, plain)):
        x_ = x.clone().requires_grad_()
        y = conv(x_)
        results.append([y, *torch.autograd.grad(y, (x_, weights.weight, weights.bias), grad)])
    for outputs in (results[:2], results[1:]):
        for got, want in zip(*outputs, strict=True):
            assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
    x_ = x[:, :8].clone().requires_grad_()
    y = glu(x_)
    assert torch.equal(y, torch.nn.functional.glu(x_, dim=1))
