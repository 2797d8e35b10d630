"""Hostile input: every bad file gets a clear reject reason, every odd-but-valid file is
converted correctly, and the CLI answers one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.config import PrepConfig
from data_prep.pipeline import run_prep
from tests.conftest import REPO, read_excerpt
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.fileio import read_jsonl

# dio keeps these tests fast; the F0 method is irrelevant to accepting or rejecting files.
FAST = PrepConfig(features=FeatureConfig(f0_method="dio"))

# file name -> a fragment the reject reason must contain
REJECTED = {
    "empty.wav": "empty file",
    "text.wav": "cannot decode",
    "random.flac": "cannot decode",
    "truncated.wav": "cannot decode",
    "folder.wav": "is a directory",
    "dangling.flac": "dangling symlink",
    "nan_inf.wav": "NaN/Inf",
    "digital_silence.wav": "digital silence",
    "near_silence.wav": "near-silent",
    "one_sample.wav": "too short",
    "short_clip.wav": "no segment of at least",
    "clipped.wav": "heavily clipped",
    "zz_copy.flac": "duplicate of good/reference.flac",
}
# odd but valid: all must be accepted and converted correctly
ACCEPTED = ["8k.wav", "96k_stereo.wav", "six_channels.wav", "u8.wav", "24bit.flac",
            "float64.wav", "vorbis.ogg", "lame.mp3", "dc_offset.wav", "ünïcødé 歌.flac"]


def _singing() -> tuple[np.ndarray, int]:
    return read_excerpt("pjs", "pjs003_song.flac", 1.0, 4.0)  # 24 kHz


def _resampled(x: np.ndarray, sr: int, to: int) -> np.ndarray:
    import soxr

    return soxr.resample(x, sr, to)


def build_hostile_corpus(root: Path) -> Path:
    x, sr = _singing()
    bad, good = root / "bad", root / "good"
    bad.mkdir(parents=True)
    good.mkdir(parents=True)
    (bad / "empty.wav").write_bytes(b"")
    (bad / "text.wav").write_text("this is not audio\n" * 20)
    (bad / "random.flac").write_bytes(np.random.default_rng(0).bytes(5000))
    sf.write(bad / "full.wav", x, sr)
    (bad / "truncated.wav").write_bytes((bad / "full.wav").read_bytes()[:30])
    (bad / "full.wav").unlink()
    (bad / "folder.wav").mkdir()
    (bad / "dangling.flac").symlink_to(root / "does-not-exist.flac")
    nan = x.astype(np.float32).copy()
    nan[1000], nan[2000] = np.nan, np.inf
    sf.write(bad / "nan_inf.wav", nan, sr, subtype="FLOAT")
    sf.write(bad / "digital_silence.wav", np.zeros(3 * sr), sr)
    noise = np.random.default_rng(1).standard_normal(3 * sr) * 10 ** (-85 / 20)
    sf.write(bad / "near_silence.wav", noise, sr, subtype="FLOAT")
    sf.write(bad / "one_sample.wav", x[:1], sr)
    sf.write(bad / "short_clip.wav", x[int(2.5 * sr): 3 * sr], sr)  # 0.5 s of singing
    sf.write(bad / "clipped.wav", np.clip(x * 30, -1, 1), sr)

    sf.write(good / "reference.flac", x, sr)
    sf.write(good / "zz_copy.flac", x, sr)  # the same bytes under another name
    sf.write(good / "8k.wav", _resampled(x, sr, 8000), 8000)
    stereo = _resampled(x, sr, 96000)
    sf.write(good / "96k_stereo.wav", np.stack([stereo, 0.8 * stereo], 1), 96000)
    sf.write(good / "six_channels.wav", np.tile(x[:, None], (1, 6)) * 0.9, sr)
    sf.write(good / "u8.wav", x, sr, subtype="PCM_U8")
    sf.write(good / "24bit.flac", _resampled(x, sr, 48000), 48000, subtype="PCM_24")
    sf.write(good / "float64.wav", x.astype(np.float64), sr, subtype="DOUBLE")
    sf.write(good / "vorbis.ogg", _resampled(x, sr, 44100), 44100, format="OGG",
             subtype="VORBIS")
    sf.write(good / "lame.mp3", _resampled(x, sr, 44100), 44100, format="MP3",
             subtype="MPEG_LAYER_III")
    sf.write(good / "dc_offset.wav", x * 0.5 + 0.3, sr)
    sf.write(good / "ünïcødé 歌.flac", 0.7 * x, sr)  # scaled: identical bytes are duplicates
    return root


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = build_hostile_corpus(tmp_path_factory.mktemp("hostile"))
    out = root.parent / (root.name + "-out")
    report = run_prep(root, out, FAST, jobs=2, progress=False)
    return root, out, report


def test_each_bad_file_is_rejected_with_its_reason(hostile):
    _, out, _ = hostile
    reasons = {Path(r["source"]).name: r["reason"] for r in read_jsonl(out / "rejects.jsonl")}
    for name, fragment in REJECTED.items():
        assert name in reasons, f"{name} was not rejected"
        assert fragment in reasons[name], f"{name}: {reasons[name]!r}"
    assert set(reasons) == set(REJECTED)  # and nothing good was rejected


def test_odd_but_valid_files_are_converted_correctly(hostile):
    _, out, _ = hostile
    cleaned = {Path(r["source"]).name: r for r in read_jsonl(out / "stages/clean.jsonl")}
    segmented = {Path(r["source"]).name for r in read_jsonl(out / "manifest.jsonl")}
    reference, sr = sf.read(out / cleaned["reference.flac"]["audio"])
    assert sr == 22050
    for name in ACCEPTED:
        assert name in cleaned and name in segmented, name
        row = cleaned[name]
        y, rate = sf.read(out / row["audio"])
        assert rate == 22050 and y.ndim == 1
        assert abs(len(y) - len(reference)) / sr <= 0.01, name  # same duration within 10 ms
        n = min(len(y), len(reference))
        lag = _best_lag(reference[:n], y[:n])
        a, b = reference[max(0, -lag): n - max(0, lag)], y[max(0, lag): n + min(0, lag)]
        similarity = np.corrcoef(a, b)[0, 1]
        # 8 kHz keeps only content below 4 kHz; u8 and lossy codecs add noise.
        # (the high-pass's edge transient on a removed 0.3 DC step costs a little too).
        floor = {"8k.wav": 0.9, "u8.wav": 0.99, "lame.mp3": 0.98, "vorbis.ogg": 0.98,
                 "dc_offset.wav": 0.995}
        assert similarity > floor.get(name, 0.9999), (name, similarity)
    assert cleaned["dc_offset.wav"]["dc_offset"] == pytest.approx(0.3, abs=0.01)
    assert cleaned["96k_stereo.wav"]["source_channels"] == 2
    assert cleaned["six_channels.wav"]["source_channels"] == 6


def _best_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 3000) -> int:
    """Lag (in samples) of b against a: codecs may add a small delay."""
    spectrum = np.fft.rfft(b, 2 * len(b)) * np.conj(np.fft.rfft(a, 2 * len(a)))
    xcorr = np.fft.irfft(spectrum)
    lags = np.concatenate((np.arange(0, max_lag + 1), np.arange(-max_lag, 0)))
    values = np.concatenate((xcorr[: max_lag + 1], xcorr[-max_lag:]))
    return int(lags[np.argmax(values)])


def test_rerun_of_a_hostile_corpus_is_idempotent(hostile):
    root, out, _ = hostile
    before = {n: (out / n).read_bytes() for n in ("manifest.jsonl", "rejects.jsonl")}
    again = run_prep(root, out, FAST, jobs=1, progress=False)
    assert sum(s.computed for s in again.stages) == 0
    assert {n: (out / n).read_bytes() for n in before} == before


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voiceconv.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_cli_with_no_usable_file_exits_non_zero_with_one_line(hostile, tmp_path):
    root, _, _ = hostile
    done = _cli("prep", str(root / "bad"), str(tmp_path / "out"), "--quiet", "--jobs", "1")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "no usable audio" in done.stderr


def test_cli_with_a_missing_corpus_says_so_in_one_line(tmp_path):
    done = _cli("prep", str(tmp_path / "nowhere"), str(tmp_path / "out"))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"voiceconv prep: error: corpus folder not found: " \
                                  f"{tmp_path / 'nowhere'}"


def test_commands_refuse_bad_arguments_before_importing_torch(tmp_path):
    """A missing corpus, an unwritable output, a stage run out of order, or a checkpoint or
    config that is not there is refused before torch and librosa load (seconds), so the user
    hears at once."""
    (tmp_path / "a_file").write_text("")
    experiment = tmp_path / "exp"
    (experiment / "checkpoints").mkdir(parents=True)
    (experiment / "checkpoints" / "last.ckpt").write_text("")
    script = ("import sys\nfrom voiceconv.cli import main\ncode = main(sys.argv[1:])\n"
              "print(code, sorted({'torch', 'librosa'} & set(sys.modules)))")
    song = str(REPO / "recipes" / "demo" / "audio")
    for args, error in (
            (["prep", str(tmp_path / "nowhere"), str(tmp_path / "out")], "nowhere"),
            (["prep", str(tmp_path), str(tmp_path / "a_file" / "out")], "cannot write to"),
            (["prep", str(tmp_path), str(tmp_path / "out"), "--stage", "features"],
             "run the segment stage first"),
            (["convert", song, "--model", str(tmp_path / "nope.ckpt")], "no such checkpoint"),
            (["convert", song, "--model", str(experiment)],
             f"is a folder, not a checkpoint (did you mean {experiment}/checkpoints/last.ckpt?)"),
            (["convert", song, "--model", str(tmp_path / "a_file"), "--vocoder",
              str(tmp_path / "nope.ckpt")], "no such checkpoint"),
            (["convert", song, "--model", str(tmp_path / "a_file"), "--vocoder", "melgan"],
             "unknown vocoder 'melgan'"),
            (["fit", "--config", str(tmp_path / "nope.yaml")], "nope.yaml: no such file"),
            (["pretrain", f"-c={tmp_path / 'nope.yml'}", "--trainer.max_steps", "1"],
             "nope.yml: no such file")):
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert done.stdout.strip() == "2 []", (args, done.stdout, done.stderr)
        assert done.stderr.startswith(f"voiceconv {args[0]}: error: "), done.stderr
        assert error in done.stderr, (error, done.stderr)


def test_cli_stage_without_its_input_manifest_says_which_stage_to_run(tmp_path):
    done = _cli("prep", str(tmp_path), str(tmp_path / "out"), "--stage", "clean")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "run the ingest stage first" in done.stderr


def test_a_file_over_the_length_limit_is_refused_not_loaded(tmp_path):
    from data_prep.config import IngestConfig

    x, sr = _singing()
    (tmp_path / "corpus" / "singer").mkdir(parents=True)
    sf.write(tmp_path / "corpus" / "singer" / "long.wav", x, sr)  # 4 s
    config = PrepConfig(ingest=IngestConfig(max_duration_s=2.0))
    report = run_prep(tmp_path / "corpus", tmp_path / "out", config, stages=("ingest",),
                      progress=False)
    reasons = [r["reason"] for r in report.rejects]
    assert reasons == ["too long (4.0 s, limit 2.0 s); split it first"]


def test_cli_with_an_unwritable_output_or_a_broken_config_says_so_in_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    done = _cli("prep", str(tmp_path), str(tmp_path / "a_file" / "out"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"voiceconv prep: error: cannot write to " \
                                  f"{tmp_path / 'a_file' / 'out'}: Not a directory"
    (tmp_path / "broken.yaml").write_text("features: [\n")
    done = _cli("prep", str(tmp_path), str(tmp_path / "out"), "--config",
                str(tmp_path / "broken.yaml"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "cannot read config" in done.stderr and "line 2" in done.stderr
    # An option argparse refuses: one line too, not its usage page first.
    done = _cli("prep", str(tmp_path), str(tmp_path / "out"), "--stage", "bogus")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("voiceconv prep: error: argument --stage: invalid choice")


def test_prep_output_in_the_corpus_is_not_read_back_and_the_corpus_itself_is_refused(tmp_path):
    x, sr = _singing()
    corpus = tmp_path / "corpus"
    (corpus / "singer").mkdir(parents=True)
    sf.write(corpus / "singer" / "song.wav", x, sr)
    done = _cli("prep", str(corpus), str(corpus), "--quiet")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("voiceconv prep: error: the output folder is the "
                                          "corpus itself"), done.stderr
    assert [p.name for p in corpus.iterdir()] == ["singer"]  # nothing written
    for _ in range(2):  # the second run sees the first one's audio under corpus/prep
        report = run_prep(corpus, corpus / "prep", stages=("ingest",), progress=False)
        assert [r["source"] for r in report.stages[0].rows] == ["singer/song.wav"]
