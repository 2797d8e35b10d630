"""How good are nearest-neighbour pseudo-targets, matched on mels or on a base's encoder?

The pair model regresses onto the mean of the k nearest target-singer frames
(`voiceconv.core.neighbours`), so those targets bound what it learns. This scores the lookup alone
on the parallel mbrola dev set that `benchmarks/transfer.py --pair mbrola` prepares: each us2
dev frame is replaced by the mean mel of its k nearest us3 training frames, matched either on
normalised mels (what training uses), on a pretrained base's encoder output (up-sampled from
its quarter frame rate), or on a self-supervised model's features (`data.content_encoder`,
kNN-VC's matching; a local weights file), and the result is scored against the real us3
frame (mean frame mel-cepstral distortion, dB, as the pair model's validation).

Usage: python benchmarks/neighbour_lookup.py [--base BASE.ckpt]
       [--content-weights WAVLM_LARGE.pth [--content-architecture wavlm_large]
        [--content-layer 6]]
       [--prep benchmarks/out/transfer/mbrola]   (a transfer benchmark's --out)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine  # noqa: E402
from data_prep.prepared import feature_config  # noqa: E402
from voiceconv.core.checkpoint import read_checkpoint  # noqa: E402
from voiceconv.core.feature_config import FeatureConfig  # noqa: E402
from voiceconv.core.melcep import frame_mcd  # noqa: E402
from voiceconv.fit.data import ValidationPairs, segment_content  # noqa: E402
from voiceconv.fit.transfer import load_base  # noqa: E402
from voiceconv.models.content import ContentEncoder, ContentEncoderConfig  # noqa: E402
from voiceconv.models.generator import Encoder, GeneratorConfig  # noqa: E402
from voiceconv.training.crops import SingerData, load_singer  # noqa: E402


def base_encoder(path: str) -> Encoder:
    config = GeneratorConfig(**read_checkpoint(path, "pretrain")["hyper_parameters"]["generator"])
    encoder = Encoder(config)
    encoder.load_state_dict(load_base(path, config, None).encoder)
    return encoder.eval()


def content(encoder: Encoder, mel: torch.Tensor) -> torch.Tensor:
    """(n_mels, T) normalised mel -> (channels, T) encoder output, repeated to the frame rate."""
    frames = mel.shape[1]
    padded = torch.nn.functional.pad(mel, (0, -frames % 4), mode="replicate")
    x = torch.stack([padded, torch.ones_like(padded)])[None]  # mel and an all-visible mask
    return encoder(x)[0].repeat_interleave(4, -1)[:, :frames]


def standardise(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return (x - reference.mean(1, keepdim=True)) / reference.std(1, keepdim=True)


def with_content(singer: SingerData, encoder: ContentEncoder,
                 config: FeatureConfig) -> SingerData:
    """The singer with each segment's content features stacked under its mel, so that the
    dev pairs cut both at once (split again at n_mels)."""
    for segment in singer.segments:
        frames = segment_content(encoder, config, segment).numpy()
        segment.mel = np.concatenate([segment.mel, frames])
    return singer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", help="a `voiceconv pretrain` checkpoint")
    parser.add_argument("--content-weights", help="a local self-supervised model's weights")
    parser.add_argument("--content-architecture", default="wavlm_large")
    parser.add_argument("--content-layer", type=int, default=6)
    parser.add_argument("--prep", type=Path, default=Path("benchmarks/out/transfer/mbrola"))
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    a = load_singer(args.prep / "prep_train", "us2")
    b = load_singer(args.prep / "prep_train", "us3")
    features = feature_config(args.prep / "prep_train")
    dev_a = load_singer(args.prep / "prep_dev", "us2", a.stats)
    dev_b = load_singer(args.prep / "prep_dev", "us3", b.stats)
    n_mels = features.n_mels
    if args.content_weights:
        ssl = ContentEncoder(ContentEncoderConfig(args.content_weights,
                                                  args.content_architecture, args.content_layer))
        started = time.perf_counter()
        bank_ssl = torch.cat([torch.from_numpy(s.mel[n_mels:]) for s in
                              with_content(b, ssl, features).segments], 1)
        seconds = time.perf_counter() - started
        dev_a = with_content(dev_a, ssl, features)
        dev_b = with_content(dev_b, ssl, features)
        audio_s = bank_ssl.shape[1] * features.hop_length / features.sample_rate
        speed = (f"content features of the us3 bank: {seconds:.1f} s for {audio_s:.0f} s of "
                 f"audio ({audio_s / seconds:.1f}x real time)")
    dev_set = ValidationPairs(dev_a, dev_b, True, 10_000, 1_000_000,
                              features.hop_length / features.sample_rate)
    pairs = [(dev_set[i]["a"], dev_set[i]["b"]) for i in range(len(dev_set))]
    dev = [(x[:n_mels], y[:n_mels]) for x, y in pairs]

    def log_mel(mel: torch.Tensor, singer: SingerData) -> torch.Tensor:
        std, mean = (torch.tensor(singer.stats[k])[:, None] for k in ("mel_std", "mel_mean"))
        return mel * std + mean

    bank_mel = torch.cat([torch.from_numpy(s.mel[:n_mels]) for s in b.segments], 1)

    def score(queries: list[torch.Tensor], bank: torch.Tensor, k: int) -> float:
        distortions = []
        for (_, target), query in zip(dev, queries, strict=True):
            nearest = torch.cdist(query.T, bank.T).topk(k, largest=False).indices
            looked_up = bank_mel.T[nearest].mean(1).T
            distortions.append(frame_mcd(log_mel(looked_up, b), log_mel(target, b)).flatten())
        return torch.cat(distortions).mean().item()

    identity = torch.cat([frame_mcd(log_mel(x, b), log_mel(y, b)).flatten() for x, y in dev])
    rows = [("identity (us2, normalised into us3's statistics)", None, identity.mean().item())]
    rows += [("normalised mels (training's lookup)", k, score([x for x, _ in dev], bank_mel, k))
             for k in (4, 16, 64)]
    if args.content_weights:
        dev_ssl = [x[n_mels:] for x, _ in pairs]
        rows += [(f"{args.content_architecture} layer {args.content_layer} (content_encoder)",
                  k, score(dev_ssl, bank_ssl, k)) for k in (4, 16, 64)]
    if args.base:
        encoder = base_encoder(args.base)
        bank_enc = torch.cat([content(encoder, torch.from_numpy(s.mel[:n_mels]))
                              for s in b.segments], 1)
        train_a_enc = torch.cat([content(encoder, torch.from_numpy(s.mel)) for s in a.segments],
                                1)
        dev_enc = [content(encoder, x) for x, _ in dev]
        enc_std = [standardise(e, train_a_enc) for e in dev_enc]
        bank_enc_std = standardise(bank_enc, bank_enc)
        rows.append(("base encoder output", 16, score(dev_enc, bank_enc, 16)))
        rows.append(("base encoder output, standardised per singer", 16,
                     score(enc_std, bank_enc_std, 16)))
        for weight in (0.5, 1.0):
            rows.append((f"mels + {weight} x standardised encoder output", 16, score(
                [torch.cat([x, weight * e]) for (x, _), e in zip(dev, enc_std, strict=True)],
                torch.cat([bank_mel, weight * bank_enc_std]), 16)))
    print(machine())
    print(f"{len(dev)} dev pairs, {bank_mel.shape[1]} us3 training frames; base {args.base}; "
          f"content encoder {args.content_weights}")
    if args.content_weights:
        print(speed)
    print("| matched on | k | dev MCD dB |\n|---|---|---|")
    for name, k, mcd in rows:
        print(f"| {name} | {k or ''} | {mcd:.2f} |")


if __name__ == "__main__":
    main()
