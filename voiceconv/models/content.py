"""Self-supervised content features from a local weights file, for nearest-neighbour matching.

kNN-VC (Baas et al., 2023) matches source and target frames on a self-supervised speech model's
features (WavLM-Large, layer 6), which keep what is sung and drop much of who sings it;
normalised mels and a masked-reconstruction encoder keep the singer. With
`data.content_encoder`, `voiceconv fit` finds each frame's nearest target frames in such a
model's feature space instead of in the mels; the targets are still the mean *mels* of those
frames, so the generator stays mel -> mel. The model is frozen and never trained, and nothing
is downloaded: the weights are a file the user has, a state dict of the torchaudio architecture
named (what torchaudio's own bundles, e.g. `torchaudio.pipelines.WAVLM_LARGE`, load), read with
`weights_only=True`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio
from torchaudio.functional import resample

from voiceconv.core.checkpoint import load_plain
from voiceconv.core.errors import VoiceconvError

SAMPLE_RATE = 16000  # every wav2vec 2.0 / HuBERT / WavLM model is trained at 16 kHz
# The convolutional front end's frame: 400 samples wide, one every 320 (20 ms).
FRAME_WIDTH, FRAME_STRIDE = 400, 320
# torchaudio builders of `Wav2Vec2Model`s: the preset sizes, and the two fully configurable
# ones (`options` then gives every size).
ARCHITECTURES = ("wav2vec2_base", "wav2vec2_large", "wav2vec2_large_lv60k", "wav2vec2_xlsr_300m",
                 "hubert_base", "hubert_large", "hubert_xlarge", "wavlm_base", "wavlm_large",
                 "wav2vec2_model", "wavlm_model")
# Those whose torchaudio bundles standardise the waveform before the model.
NORMALIZED_INPUT = ("wav2vec2_large_lv60k", "wav2vec2_xlsr_300m", "hubert_large", "hubert_xlarge",
                    "wavlm_large")


@dataclass(frozen=True)
class ContentEncoderConfig:
    """Which self-supervised model matches frames.

    weights: a local state dict file (`torch.save`, e.g. .pth) of `architecture`.
    layer: whose output is used (1-based transformer layer; kNN-VC uses WavLM-Large's 6th).
    normalize_waveform: standardise each input waveform first, as torchaudio's bundles of the
        LV-60k, XLS-R, large HuBERT and WavLM-Large models do; None: as the bundle of
        `architecture` does.
    options: keyword arguments of the torchaudio builder (all sizes for `wav2vec2_model` and
        `wavlm_model`).
    """

    weights: str
    architecture: str = "wavlm_large"
    layer: int = 6
    normalize_waveform: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)


class ContentEncoder:
    """A frozen self-supervised model that gives content features on a mel frame grid."""

    def __init__(self, config: ContentEncoderConfig) -> None:
        if config.architecture not in ARCHITECTURES:
            raise VoiceconvError(f"content_encoder.architecture {config.architecture!r} is not "
                                 f"one of {', '.join(ARCHITECTURES)}")
        try:
            model = getattr(torchaudio.models, config.architecture)(**config.options)
        except TypeError as error:
            raise VoiceconvError(f"content_encoder.options do not fit "
                                 f"{config.architecture}: {error}") from None
        layers = len(model.encoder.transformer.layers)
        if not 1 <= config.layer <= layers:
            raise VoiceconvError(f"content_encoder.layer must be in 1..{layers} for "
                                 f"{config.architecture}, got {config.layer}")
        state = read_state_dict(Path(config.weights))
        if state and all(k.startswith("model.") for k in state):
            # torchaudio's bundles of the large models wrap theirs (waveform normalisation).
            state = {k.removeprefix("model."): v for k, v in state.items()}
        missing, unexpected = _key_mismatch(model.state_dict(), state)
        if missing or unexpected:
            raise VoiceconvError(
                f"content_encoder.weights {config.weights} is not a {config.architecture} "
                f"state dict ({len(missing)} weights missing, e.g. {missing[:1]}; "
                f"{len(unexpected)} unexpected, e.g. {unexpected[:1]})")
        model.load_state_dict(state)
        self.model = model.eval().requires_grad_(False)
        self.layer = config.layer
        normalize = config.normalize_waveform
        self.normalize = (normalize if normalize is not None else
                          config.architecture in NORMALIZED_INPUT)

    @torch.no_grad()
    def frames(self, audio: np.ndarray, sample_rate: int, hop_length: int,
               n_frames: int) -> torch.Tensor:
        """audio: (samples,) at `sample_rate` -> (dim, n_frames) features at the centres of the
        mel frames (frame i centred at (i + 1/2) hop), linearly interpolated between the
        model's 20 ms frames."""
        x = resample(torch.from_numpy(np.ascontiguousarray(audio, np.float32)), sample_rate,
                     SAMPLE_RATE)
        x = torch.nn.functional.pad(x, (0, max(0, FRAME_WIDTH - x.shape[0])))
        if self.normalize:
            x = torch.nn.functional.layer_norm(x, x.shape)
        layers, _ = self.model.extract_features(x[None], num_layers=self.layer)
        features = layers[self.layer - 1][0].T  # (dim, T')
        position = interpolation_grid(features.shape[1], sample_rate, hop_length, n_frames)
        below = position.floor().long()
        above = (below + 1).clamp(max=features.shape[1] - 1)
        weight = (position - below).float()
        return features[:, below] * (1 - weight) + features[:, above] * weight


def interpolation_grid(ssl_frames: int, sample_rate: int, hop_length: int,
                       n_frames: int) -> torch.Tensor:
    """Fractional positions on the model's frame axis of the n mel frame centres."""
    centres = (torch.arange(n_frames, dtype=torch.float64) + 0.5) * hop_length / sample_rate
    first = FRAME_WIDTH / 2 / SAMPLE_RATE  # the model's frame j is centred at first + j * 20 ms
    return ((centres - first) / (FRAME_STRIDE / SAMPLE_RATE)).clamp(0, ssl_frames - 1)


def _key_mismatch(expected: dict[str, torch.Tensor],
                  given: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    missing = [k for k in expected if k not in given or given[k].shape != expected[k].shape]
    return missing, [k for k in given if k not in expected]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a local weights file; never unpickles code."""
    if not path.is_file():
        raise VoiceconvError(f"content_encoder.weights {path}: no such file")
    try:
        state = load_plain(str(path))
    except VoiceconvError as error:
        raise VoiceconvError(f"content_encoder.weights {path}: not a readable weights file "
                             f"({error})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise VoiceconvError(f"content_encoder.weights {path}: not a state dict of tensors")
    return state
