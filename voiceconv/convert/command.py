"""`voiceconv convert`: vocal stems (files or folders) -> converted stems (and mixes).

A problem with the whole run (model, vocoder, output folder) is one line and exit code 2; a
problem with one input is one line in the summary, the others still convert, exit code 1.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from voiceconv.core.audio import AUDIO_EXTENSIONS, audio_info, human_duration
from voiceconv.core.checkpoint import require_checkpoint_file
from voiceconv.core.errors import ArgumentParser, VoiceconvError
from voiceconv.core.feature_config import F0_METHODS
from voiceconv.core.fileio import require_writable
from voiceconv.core.vocoder_names import NAMES as VOCODER_NAMES
from voiceconv.core.vocoder_names import PRECISIONS, require_vocoder

FORMATS = ("wav", "flac")


@dataclass(frozen=True)
class Job:
    source: Path
    out: Path
    mix: Path | None
    seconds: float  # duration, for the progress bar (0 when unreadable)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = ArgumentParser(prog=prog, description=(
        "Convert vocal stems from singer A to singer B (or back) with a fitted model."))
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="vocal stems: audio files or folders (searched recursively)")
    p.add_argument("--model", required=True, help="a checkpoint written by `voiceconv fit`")
    p.add_argument("--direction", choices=("a2b", "b2a"), default="a2b",
                   help="a2b: songs of the model's singer A, in B's voice (default); "
                   "b2a: B's, in A's")
    p.add_argument("--key", default="0", help="semitones to shift the melody (e.g. -3, +12), "
                   "or 'auto' to fit the source's range into the target singer's (default 0)")
    p.add_argument("--vocoder", default="world",
                   help=f"{' | '.join(VOCODER_NAMES)}, a vocoder checkpoint or pretrained:<name> "
                   "(default world: exact pitch)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="a neural vocoder's arithmetic: auto = bf16 where the GPU or CPU (AMX, "
                   "AVX512-BF16) has bf16 units, 1.5-2x faster there and not audibly "
                   "different; fp32 elsewhere (default auto)")
    p.add_argument("--copy-synthesis", action="store_true",
                   help="render the source itself through the vocoder (same F0, key and "
                   "chunks, no conversion): the baseline to judge a conversion against")
    p.add_argument("--match-k", type=int, default=0, metavar="K",
                   help="replace each converted frame by the mean of its K nearest frames of "
                   "the target singer's training songs (e.g. 32): less spectral distortion, "
                   "a smoother sound, a little less speaker similarity (default 0: off)")
    p.add_argument("--f0-method", choices=F0_METHODS, default=None,
                   help="pitch tracker (default: the one the model's features used; "
                   "dio is ~30x faster than harvest)")
    p.add_argument("--accompaniment", type=Path, default=None,
                   help="the song's accompaniment: also write OUT/<name>.mix.<format>")
    p.add_argument("--out", type=Path, default=Path("converted"),
                   help="output folder (default ./converted); never an input's own file")
    p.add_argument("--format", choices=FORMATS, default="wav",
                   help="24-bit wav (default) or flac, at the input's rate and channels")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: a GPU when there is one")
    p.add_argument("--jobs", type=int, default=1, help="files converted in parallel "
                   "(default 1; the cores are shared among them)")
    p.add_argument("--chunk-seconds", type=float, default=20.0,
                   help="longest piece converted at once (cut at the quietest point; "
                   "default 20)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_key(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise VoiceconvError(f"--key must be a number of semitones or 'auto' (got {text!r})") \
            from None


def collect_jobs(inputs: list[str], out: Path, fmt: str, accompaniment: Path | None
                 ) -> tuple[list[Job], list[tuple[str, str]]]:
    """Expand files and folders into jobs; inputs that cannot be used become failures."""
    pairs: list[tuple[Path, Path]] = []  # (source, output name without extension)
    failures: list[tuple[str, str]] = []
    results = out.resolve()
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            # An output folder inside an input folder holds earlier results, not inputs.
            inside = results != path.resolve()
            found = sorted(p for p in path.rglob("*")
                           if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                           and not (inside and p.resolve().is_relative_to(results)))
            if not found:
                failures.append((text, "no audio files in this folder"))
            pairs += [(p, p.relative_to(path).with_suffix("")) for p in found]
        elif path.exists():
            pairs.append((path, Path(path.stem)))
        else:
            failures.append((text, "no such file or folder"))
    if accompaniment is not None and len(pairs) > 1:
        raise VoiceconvError("--accompaniment goes with a single input stem")
    jobs, taken = [], set()
    kept = {source.resolve() for source, _ in pairs}  # no output may replace any of these
    if accompaniment is not None:
        kept.add(accompaniment.resolve())
    for source, name in pairs:
        target = out / f"{name}.{fmt}"
        if target in taken:
            failures.append((str(source), f"another input is also written to {target}"))
            continue
        taken.add(target)
        mix = out / f"{name}.mix.{fmt}" if accompaniment is not None else None
        if any(written.resolve() in kept for written in (target, mix) if written):
            failures.append((str(source), f"{target} would replace an input: choose another "
                                          "--out"))
            continue
        jobs.append(Job(source, target, mix, _duration(source)))
    return jobs, failures


def _duration(path: Path) -> float:
    try:
        return float(sf.info(str(path)).duration)
    except Exception:  # noqa: BLE001 - unreadable files fail later with their reason
        return 0.0


def pick_device(name: str) -> str:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise VoiceconvError("--device cuda: no CUDA GPU is available here")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def make_converter(args: argparse.Namespace):
    from voiceconv.convert.converter import Converter, ConvertSettings
    from voiceconv.models.pair import SingerPair
    from voiceconv.models.vocoders import load_vocoder

    model = SingerPair.from_checkpoint(args.model)
    vocoder = load_vocoder(args.vocoder, model.feature_config).with_precision(args.precision)
    settings = ConvertSettings(direction=args.direction, key=parse_key(args.key),
                               f0_method=args.f0_method, max_chunk_s=args.chunk_seconds,
                               min_chunk_s=min(5.0, args.chunk_seconds / 2),
                               copy_synthesis=args.copy_synthesis, match_k=args.match_k)
    if settings.f0_method == "fcpe":
        from voiceconv.core.features import require_f0_method

        require_f0_method(model.feature_config.replace(f0_method="fcpe"))
    return Converter(model, vocoder, settings, pick_device(args.device))


def convert_one(converter, job: Job, args: argparse.Namespace, progress=lambda s: None) -> str:
    """One line describing the converted file; raises VoiceconvError for a bad input."""
    result = converter.convert_file(job.source, job.out, args.format, args.accompaniment,
                                    job.mix, progress)
    mix = f" (+ {job.mix})" if job.mix else ""
    return (f"{job.source} -> {job.out}{mix}: {human_duration(result.duration_s)}, "
            f"key {result.key:+g}, {result.realtime_factor:.1f}x real time")


# -- parallel workers: each process loads the model once -------------------------------------------

_WORKER: dict = {}


def _worker_init(args: argparse.Namespace, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER["args"], _WORKER["converter"] = args, make_converter(args)


def _worker_convert(job: Job) -> tuple[bool, str]:
    try:
        return True, convert_one(_WORKER["converter"], job, _WORKER["args"])
    except VoiceconvError as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
        return False, f"unexpected error: {type(exc).__name__}: {exc}"


def main(argv: list[str], prog: str = "voiceconv convert") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.jobs < 1:
        raise VoiceconvError("--jobs must be at least 1")
    if not 1 <= args.chunk_seconds < math.inf:  # nan fails every comparison
        raise VoiceconvError(f"--chunk-seconds must be a finite number of seconds, at least 1; "
                             f"got {args.chunk_seconds:g}")
    parse_key(args.key)
    require_checkpoint_file(args.model)  # before torch loads: a mistyped path is said at once
    require_vocoder(args.vocoder)
    if args.accompaniment is not None:  # read only after the conversion: checked now
        audio_info(args.accompaniment, "--accompaniment")
    jobs, failures = collect_jobs(args.inputs, args.out, args.format, args.accompaniment)
    if jobs:
        require_writable(args.out)
        # Built here even when workers build their own: a bad model or vocoder is one
        # line before any work starts.
        converter = make_converter(args)
    total = sum(job.seconds for job in jobs)
    bar = tqdm(total=total, unit="s", desc="converting", disable=not jobs or args.quiet,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")

    converted = 0

    def finished(job: Job, ok: bool, text: str, bar_before: float) -> None:
        nonlocal converted
        if ok:
            converted += 1
            tqdm.write(text, file=sys.stdout)
        else:
            failures.append((str(job.source), text))
        bar.update(max(0.0, job.seconds - (bar.n - bar_before)))  # the rest of this file

    if len(jobs) > 1 and args.jobs > 1:
        import multiprocessing

        workers = min(args.jobs, len(jobs))
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), _worker_init,
                                 (args, threads)) as pool:
            futures = {pool.submit(_worker_convert, job): job for job in jobs}
            for future in as_completed(futures):
                finished(futures[future], *future.result(), bar.n)
    else:
        for job in jobs:
            before = bar.n
            try:
                finished(job, True, convert_one(converter, job, args, bar.update), before)
            except VoiceconvError as exc:
                finished(job, False, str(exc), before)
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
                if os.environ.get("VOICECONV_DEBUG"):
                    raise
                finished(job, False, f"unexpected error: {type(exc).__name__}: {exc}", before)
    bar.close()
    print(f"converted {converted} of {converted + len(failures)} inputs into {args.out}",
          file=sys.stderr)
    for source, reason in failures:
        print(f"failed: {source}: {reason}", file=sys.stderr)
    return 1 if failures else 0
