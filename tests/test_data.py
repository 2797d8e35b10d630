"""SingerPairData over a real prep output: normalised unpaired crops, batches that depend only
on (seed, index) (the resume guarantee), held-out validation, parallel pairing, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from data_prep.config import PrepConfig
from data_prep.pipeline import run_prep
from tests.conftest import REPO, read_excerpt
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.fit.data import SingerPairData


@pytest.fixture(scope="module")
def data(prepared) -> SingerPairData:
    dm = SingerPairData(str(prepared.out_dir), "nit_f001", "pjs", crop_frames=32, batch_size=4,
                        val_segments=1)
    dm.setup("fit")
    return dm


def test_crops_are_unpaired_normalised_mels_of_each_singer(data):
    batch = data.train_set.batch(0)
    assert batch["a"].shape == batch["b"].shape == (4, 80, 32)
    assert batch["a"].dtype == torch.float32
    everything = data.train_set.mels["a"]
    assert abs(float(everything.mean())) < 0.2 and 0.8 < float(everything.std()) < 1.2
    assert not torch.equal(batch["a"], data.train_set.batch(1)["a"])


def test_batch_k_is_the_same_whatever_the_loader_position_or_worker_count(data):
    expected = [data.train_set.batch(k) for k in range(5, 9)]
    data.train_set.first_batch = 5
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(data.train_set, batch_size=None,
                                             num_workers=workers)
        got = [b for _, b in zip(range(4), loader, strict=False)]
        for want, have in zip(expected, got, strict=True):
            assert torch.equal(want["a"], have["a"]) and torch.equal(want["b"], have["b"])
    data.train_set.first_batch = 0
    data.train_set.rank = 1  # another DDP rank draws other crops
    assert not torch.equal(data.train_set.batch(5)["a"], expected[0]["a"])
    data.train_set.rank = 0


def test_validation_segments_are_held_out_of_training(data, prepared):
    val = data.val_set[0]
    assert val["a"].shape[0] == 80 and val["a"].shape[1] % 4 == 0
    crops = data.train_set.mels["a"].numpy()
    window = val["a"][:, :32].numpy()
    # The held-out segment's frames appear nowhere in the training array.
    hits = [np.allclose(crops[:, i: i + 32], window) for i in range(crops.shape[1] - 31)]
    assert not any(hits)


def test_unknown_singer_and_too_long_crops_are_clear_errors(prepared):
    with pytest.raises(VoiceconvError, match="no segments of singer 'nobody'.*nit_f001, pjs"):
        SingerPairData(str(prepared.out_dir), "nobody", "pjs").setup("fit")
    with pytest.raises(VoiceconvError, match="no segment of at least 4000 frames"):
        SingerPairData(str(prepared.out_dir), "nit_f001", "pjs", crop_frames=4000,
                       val_segments=1).setup("fit")
    with pytest.raises(VoiceconvError, match="multiple of 4"):
        SingerPairData(str(prepared.out_dir), "nit_f001", "pjs", crop_frames=30).setup("fit")
    with pytest.raises(VoiceconvError, match="not a `voiceconv prep` output"):
        SingerPairData(str(REPO), "nit_f001", "pjs").setup("fit")


def test_parallel_validation_pairs_the_same_melody_frame_by_frame(tmp_path):
    """Two "singers" singing the same take (one 6 dB quieter, as in a sample-aligned corpus):
    every validation pair must be the same stretch of the melody, frame by frame."""
    x, sr = read_excerpt("pjs", "pjs001_song.flac", 0.0, 30.0)
    for singer, gain in (("loud", 1.0), ("quiet", 0.5)):
        (tmp_path / "corpus" / singer).mkdir(parents=True)
        sf.write(tmp_path / "corpus" / singer / "take.flac", x * gain, sr)
    run_prep(tmp_path / "corpus", tmp_path / "prep",
             PrepConfig(features=FeatureConfig(f0_method="dio")), progress=False)
    dm = SingerPairData(str(tmp_path / "prep"), "loud", "quiet", crop_frames=32,
                        val_prep_dir=str(tmp_path / "prep"), val_parallel=True)
    dm.setup("fit")
    assert len(dm.val_set) >= 2
    for i in range(len(dm.val_set)):
        pair = dm.val_set[i]
        assert pair["a"].shape == pair["b"].shape
        # Both are normalised by their own singer's stats, so aligned frames match closely.
        assert float((pair["a"] - pair["b"]).abs().mean()) < 0.05
