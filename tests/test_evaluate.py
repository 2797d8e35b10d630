"""`voiceconv eval` end to end on bundled singing, speaker similarity, and the HTML report
opened in a real (headless) browser."""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyworld
import soundfile as sf

from tests.conftest import REPO, read_excerpt, run_docs_example
from voiceconv.core.audio import load_mono

CLIPS = [("nit_f001", "nitech_jp_song070_f001_004.flac", 2.0),
         ("pjs", "pjs001_song.flac", 3.0)]


@pytest.fixture(scope="module")
def shifted_set(tmp_path_factory):
    """source = WORLD resynthesis of real singing; converted = the same, 100 cents higher."""
    root = tmp_path_factory.mktemp("eval")
    for singer, name, start in CLIPS:
        x, sr = read_excerpt(singer, name, start, 3.0)
        x = x.astype(np.float64)
        f0, sp, ap = pyworld.wav2world(x, sr)
        for folder, ratio in (("source", 1.0), ("reference", 1.0), ("converted", 2 ** (1 / 12))):
            (root / folder / singer).mkdir(parents=True, exist_ok=True)
            y = pyworld.synthesize(f0 * ratio, sp, ap, sr)
            sf.write(root / folder / singer / f"{Path(name).stem}.wav", y, sr)
    out = root / "out"
    done = subprocess.run(
        [sys.executable, "-m", "voiceconv.cli", "eval", "--converted", str(root / "converted"),
         "--reference", str(root / "reference"), "--source", str(root / "source"),
         "--out", str(out), "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return root, out, done.stdout


def test_metrics_json_has_every_key_and_measures_the_shift(shifted_set):
    _, out, stdout = shifted_set
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("mcd_db", "f0_rmse_cents", "f0_median_cents", "f0_corr", "vuv_error",
                "gross_pitch_error", "speaker_sim_target", "speaker_sim_source", "n_files",
                "dnsmos_ovrl", "dnsmos_ovrl_source", "dnsmos_sig", "dnsmos_bak"):
        assert key in metrics, key
    # WORLD re-syntheses of clean singing, a semitone apart: both natural, alike.
    assert 2.5 < metrics["dnsmos_ovrl"] <= 5 and abs(metrics["dnsmos_ovrl_change"]) < 0.3
    assert metrics["n_files"] == 2 and metrics["f0_against"] == ["source"]
    assert abs(metrics["f0_median_cents"] - 100) < 5
    assert metrics["gross_pitch_error"] > 0.9 and metrics["gross_pitch_error_stable"] > 0.9
    assert 0.8 < metrics["stable_reference_share"] <= 1
    assert metrics["mcd_db"] > 0.05  # a pitch shift changes the envelope's fine detail
    assert metrics["mcd_silent_frames_excluded"] >= 0
    assert abs(metrics["duration_ratio"] - 1) < 0.01
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["file"] for r in rows] == ["nit_f001/nitech_jp_song070_f001_004", "pjs/pjs001_song"]
    assert "report.html" in stdout
    assert "similarity to target=" in stdout and "to source=" in stdout and "gain" in stdout
    assert "DNSMOS OVRL=" in stdout
    # The report opens with the same three lines, above its tables.
    report = (out / "report.html").read_text()
    for line in stdout.splitlines()[:3]:
        assert html.escape(line) in report.split("<table>")[0], line


def test_the_source_one_sample_shorter_has_gross_errors_only_where_its_f0_is_unstable(
        shifted_set, tmp_path):
    """Harvest's own noise (its decimation grid moves with the length) is no conversion error:
    the stable-frame gross error of a file against itself one sample shorter is 0."""
    from voiceconv.eval.command import evaluate

    root, _, _ = shifted_set
    for singer, name, _ in CLIPS:
        (tmp_path / "converted" / singer).mkdir(parents=True)
        x = load_mono(root / "source" / singer / f"{Path(name).stem}.wav", 16000)
        sf.write(tmp_path / "converted" / singer / f"{Path(name).stem}.wav", x[:-1], 16000,
                 subtype="FLOAT")
    summary = evaluate(tmp_path / "converted", None, tmp_path / "out", root / "source",
                       mode="nonparallel", progress=False, target_voice=root / "reference")
    assert summary["gross_pitch_error"] > 0.02  # 0.09: these WORLD re-syntheses are touchy
    assert summary["gross_pitch_error_stable"] == 0


def test_nonparallel_mode_measures_melody_against_the_source_and_no_mcd(shifted_set):
    root, _, _ = shifted_set
    # The "reference" is another singer's song, as in a non-parallel demo: only the voice counts.
    other = root / "other"
    for singer, name, _ in CLIPS:
        (other / singer).mkdir(parents=True, exist_ok=True)
        x, sr = read_excerpt("pjs", "pjs003_song.flac", 0.0, 4.0)
        sf.write(other / singer / f"{Path(name).stem}.wav", x, sr)
    from voiceconv.eval.command import evaluate

    summary = evaluate(root / "converted", other, root / "out-np", root / "source",
                       mode="nonparallel", progress=False)
    assert summary["f0_against"] == ["source"]
    assert abs(summary["f0_median_cents"] - 100) < 5
    assert np.isnan(summary["mcd_db"])  # no MCD between different songs
    assert abs(summary["duration_ratio"] - 1) < 0.01  # against the source, not the reference
    metrics = json.loads((root / "out-np" / "metrics.json").read_text())
    assert metrics["mcd_db"] is None  # NaN is written as null, never as a score
    if "speaker_sim_target_unconverted" in metrics:  # resemblyzer installed
        # The baseline is the unconverted source's similarity to the target (PJS): higher for
        # the PJS source than for the NIT-F001 one; the gain is measured against it.
        rows = {r["file"].split("/")[0]: r for r in csv.DictReader(
            (root / "out-np" / "metrics.csv").open())}
        before = {k: float(r["speaker_sim_target_unconverted"]) for k, r in rows.items()}
        assert before["pjs"] > before["nit_f001"] + 0.05
        for r in rows.values():
            gain = float(r["speaker_sim_target"]) - float(r["speaker_sim_target_unconverted"])
            assert float(r["speaker_sim_gain"]) == pytest.approx(gain, abs=1e-6)


def test_nonparallel_mode_takes_the_targets_voice_instead_of_a_reference(shifted_set, tmp_path,
                                                                         capsys):
    """Where only the target's voice counts, a reference named after each converted file was
    needed all the same (the recipes made one with symlinks): with --target-voice, the files
    pair with their sources instead. Modes that compare with references still need them.
    A song's mix (`convert --accompaniment`) beside it is no conversion to measure, and an
    unreadable recording of the target is left out of her voice, not the end of the run."""
    from voiceconv.cli import run_command
    from voiceconv.eval.command import evaluate

    root, _, _ = shifted_set
    voice = tmp_path / "voice"
    voice.mkdir()
    x, sr = read_excerpt("pjs", "pjs003_song.flac", 0.0, 4.0)
    sf.write(voice / "pjs003_song.wav", x, sr)
    (voice / "broken.wav").write_bytes(b"RIFF, then nothing")  # one bad recording of hers
    converted = shutil.copytree(root / "converted", tmp_path / "converted")
    song = next(converted.rglob("*.wav"))
    shutil.copy(song, song.with_suffix(".mix.wav"))
    summary = evaluate(converted, None, tmp_path / "out", root / "source",
                       mode="nonparallel", progress=False, target_voice=voice)
    assert summary["n_files"] == 2 and summary["failed"] == []
    assert summary["f0_against"] == ["source"]
    if "speaker_sim_target" in summary:  # resemblyzer installed: her voice from the rest
        assert summary["speaker_sim_target"] > 0.5
        assert any("leaves out 1 unreadable recording(s), e.g. " f"{voice / 'broken.wav'}"
                   in note for note in summary["notes"]), summary["notes"]
    assert abs(summary["f0_median_cents"] - 100) < 5
    assert "<b>reference</b>" not in (tmp_path / "out" / "report.html").read_text()
    common = ["--converted", root / "converted", "--source", root / "source",
              "--out", tmp_path / "refused"]
    for args, says in ((["--mode", "nonparallel"], "without --reference needs --target-voice"),
                       (["--target-voice", voice], "--mode aligned measures against references"),
                       (["--sample-rate", "0"], "--sample-rate must be 8000 to 192000 Hz")):
        code = run_command("eval", [str(a) for a in common + args])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and says in err[0], err


def test_a_corrupt_file_is_listed_with_its_reason_and_the_others_are_measured(shifted_set,
                                                                              tmp_path):
    root, _, _ = shifted_set
    for folder in ("converted", "reference", "source"):
        shutil.copytree(root / folder, tmp_path / folder)
        (tmp_path / folder / "broken.wav").write_bytes(b"RIFF, then nothing a decoder reads")
        sf.write(tmp_path / folder / "silent.wav", np.zeros(3 * 16000), 16000)
        # Readable, but too short for the analyses, which run in threads: their error is
        # the pair's reason all the same.
        sf.write(tmp_path / folder / "short.wav", np.full(50, 0.1), 16000)
    # A good pair but for its reference, which a non-parallel evaluation reads only for the
    # speaker and the report: it must still be left out, not stop them.
    good = next((root / "converted").rglob("*.wav"))
    for folder in ("converted", "source"):
        shutil.copy(good, tmp_path / folder / "bad_reference.wav")
    shutil.copy(tmp_path / "reference" / "broken.wav",
                tmp_path / "reference" / "bad_reference.wav")
    (tmp_path / "file").write_text("not a folder")
    args = [sys.executable, "-m", "voiceconv.cli", "eval", "--quiet", "--mode", "nonparallel"] + [
        a for f in ("converted", "reference", "source") for a in (f"--{f}", str(tmp_path / f))]
    unwritable = subprocess.run([*args, "--out", str(tmp_path / "file" / "out")], cwd=REPO,
                                capture_output=True, text=True, timeout=600)
    assert unwritable.returncode == 2  # refused before any file is measured
    assert unwritable.stderr.strip().splitlines() == [
        f"voiceconv eval: error: cannot write to {tmp_path / 'file' / 'out'}: Not a directory"]

    done = subprocess.run([*args, "--out", str(tmp_path / "out")], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr  # measured, but not everything
    assert f"failed: {tmp_path / 'converted' / 'broken.wav'}: cannot decode" in done.stderr
    assert f"failed: {tmp_path / 'reference' / 'bad_reference.wav'}: cannot" in done.stderr
    assert (f"failed: {tmp_path / 'converted' / 'short.wav'}: too short to analyse"
            in done.stderr)
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n_files"] == 3
    assert [f["file"] for f in metrics["failed"]] == ["bad_reference", "broken", "short"]
    assert abs(metrics["f0_median_cents"] - 100) < 5  # the real pairs, as measured alone
    rows = {r["file"]: r for r in csv.DictReader((tmp_path / "out" / "metrics.csv").open())}
    assert sorted(rows) == ["nit_f001/nitech_jp_song070_f001_004", "pjs/pjs001_song", "silent"]
    # Beside the means, the medians of the files (over each metric's finite values).
    medians, differs = metrics["median_of_files"], 0
    for key, median in medians.items():
        values = [float(r[key]) for r in rows.values() if key in r]
        finite = [v for v in values if np.isfinite(v)]
        assert median == (pytest.approx(np.median(finite)) if finite else None), key
        differs += bool(finite) and median != pytest.approx(metrics[key])
    assert differs  # three unlike files: some median is not the mean
    assert "median of 3 files: f0_median_cents=" in done.stdout
    if "speaker_sim_target" in metrics:  # resemblyzer installed: silence has no speaker
        assert rows["silent"]["speaker_sim_target"] == "nan"
        assert metrics["speaker_sim_target"] > 0.5



def test_unaligned_or_unpaired_files_are_failures_not_scores(shifted_set, tmp_path):
    """Aligned mode scores frame i against frame i: a converted file of another length is
    refused with the mode that fits, and one without a reference is listed, not skipped."""
    root, _, _ = shifted_set
    for folder in ("converted", "reference"):
        shutil.copytree(root / folder, tmp_path / folder)
    longer = tmp_path / "converted" / "pjs" / "pjs001_song.wav"
    x, sr = sf.read(longer)
    sf.write(longer, np.concatenate([x, x[: sr // 2]]), sr)  # 3.5 s against 3 s
    sf.write(tmp_path / "converted" / "extra.wav", x, sr)
    from voiceconv.eval.command import evaluate

    summary = evaluate(tmp_path / "converted", tmp_path / "reference", tmp_path / "out",
                       mode="aligned", progress=False)
    assert summary["n_files"] == 1
    reasons = {f["file"]: f["reason"] for f in summary["failed"]}
    assert sorted(reasons) == ["extra", "pjs/pjs001_song"]
    assert reasons["extra"].endswith(f"no namesake in {tmp_path / 'reference'}")
    assert "3.50 s against its reference's 3.00 s" in reasons["pjs/pjs001_song"]
    assert "--mode dtw" in reasons["pjs/pjs001_song"]
    # The same pair is measured where the mode allows other lengths.
    dtw = evaluate(tmp_path / "converted", tmp_path / "reference", tmp_path / "out-dtw",
                   mode="dtw", progress=False)
    assert dtw["n_files"] == 2 and [f["file"] for f in dtw["failed"]] == ["extra"]

def test_speaker_similarity_separates_singers():
    pytest.importorskip("resemblyzer", reason="optional extra voiceconv[speaker] missing")
    from voiceconv.eval.speaker import embed

    audio = REPO / "recipes/demo/audio"
    nit = [embed(audio / "nit_f001" / f"nitech_jp_song070_f001_{n}.flac") for n in ("004", "007")]
    pjs = [embed(audio / "pjs" / f"pjs00{n}_song.flac") for n in (1, 2)]
    same = [float(nit[0] @ nit[1]), float(pjs[0] @ pjs[1])]
    cross = [float(a @ b) for a in nit for b in pjs]
    assert min(same) > max(cross)


def test_similarity_is_to_the_centroid_of_each_singers_own_recordings_when_given():
    """--target-voice / --source-voice: the singers' own songs (the training songs) stand for
    their voices, instead of the one reference and source file of each pair."""
    pytest.importorskip("resemblyzer", reason="optional extra voiceconv[speaker] missing")
    from voiceconv.eval.command import Pair
    from voiceconv.eval.speaker import speaker_similarities

    audio = REPO / "recipes/demo/audio"
    nit = [audio / "nit_f001" / f"nitech_jp_song070_f001_{n}.flac" for n in ("004", "007")]
    pjs = [audio / "pjs" / f"pjs00{n}_song.flac" for n in (1, 2, 3)]
    # "Converted" is a NIT-F001 song the centroids never saw; its "source" a PJS song.
    pair = Pair("x", audio / "nit_f001" / "nitech_jp_song070_f001_029.flac", pjs[0],
                audio / "pjs" / "pjs004_song.flac")
    (default,), _ = speaker_similarities([pair])
    (row,), note = speaker_similarities([pair], target_voice=nit, source_voice=pjs)
    assert note == ""
    assert row["speaker_sim_target"] > row["speaker_sim_source"] + 0.05
    assert row["speaker_sim_gain"] > 0  # the PJS source is farther from NIT-F001's centroid
    assert default["speaker_sim_target"] < row["speaker_sim_target"]  # pjs001 is no NIT-F001


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const audios = [...document.querySelectorAll('audio')];
  const ready = () => audios.every(a => a.readyState >= 1 || a.error);
  const report = () => {
    const images = [...document.querySelectorAll('img')];
    const bad = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
    const audioBad = audios.filter(a => a.error || !(a.duration > 0)).length;
    const out = document.createElement('pre');
    out.id = 'check';
    out.textContent = `images=${images.length} broken_images=${bad} ` +
                      `audio=${audios.length} broken_audio=${audioBad}`;
    document.body.appendChild(out);
  };
  const wait = () => ready() ? report() : setTimeout(wait, 50);
  wait();
});
</script>"""


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (.ci/run installs it)")
def test_report_renders_in_a_real_browser(shifted_set, tmp_path):
    _, out, _ = shifted_set
    page = tmp_path / "report.html"
    page.write_text((out / "report.html").read_text().replace("</body>", CHECK_SCRIPT
                                                                 + "</body>"))
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--autoplay-policy=no-user-gesture-required",
         "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180)
    found = re.search(r"images=(\d+) broken_images=(\d+) audio=(\d+) broken_audio=(\d+)",
                      done.stdout)
    assert found, done.stderr[-2000:]
    images, broken_images, audio, broken_audio = map(int, found.groups())
    assert (images, audio) == (4, 6)  # 2 files x (spectrograms + F0) and x 3 players
    assert broken_images == 0 and broken_audio == 0


def test_a_key_shifted_conversion_keeps_its_melody_once_the_shift_is_taken_out(shifted_set):
    """`--transposed` (a conversion made with `convert --key`): the converted set is the
    source one semitone up, so the melody is kept exactly, up to that shift."""
    root, _, _ = shifted_set
    from voiceconv.eval.command import evaluate

    summary = evaluate(root / "converted", root / "reference", root / "out-key",
                       root / "source", mode="nonparallel", progress=False, transposed=True)
    assert summary["f0_key_semitones"] == 1
    # Without --transposed every frame is a gross error (test above); with it, 15 % remain
    # (measured): frames where the F0 tracker reads the two re-syntheses differently.
    assert summary["f0_median_cents"] < 5 and summary["gross_pitch_error"] < 0.2


def test_naturalness_ranks_clean_singing_above_the_same_singing_in_noise_or_buzz():
    from voiceconv.core.audio import resample
    from voiceconv.eval.naturalness import dnsmos

    x, sr = read_excerpt("pjs", "pjs001_song.flac", 3.0, 9.0)
    x = resample(x.astype(np.float32), sr, 16000)
    x = 0.5 * x / np.abs(x).max()
    rng = np.random.default_rng(0)
    noisy = x + 0.5 * np.sqrt(np.mean(x ** 2)) * rng.standard_normal(x.size)  # 6 dB SNR
    t = np.arange(x.size) / 16000
    buzz = x + 0.3 * np.sqrt(np.mean(x ** 2)) * np.sign(np.sin(2 * np.pi * 86 * t))
    clean, noise, buzzed = (dnsmos(0.5 * y / np.abs(y).max()) for y in (x, noisy, buzz))
    assert clean["dnsmos_ovrl"] > 3.0
    assert noise["dnsmos_ovrl"] < clean["dnsmos_ovrl"] - 0.8
    assert noise["dnsmos_bak"] < clean["dnsmos_bak"] - 1.0
    assert buzzed["dnsmos_ovrl"] < clean["dnsmos_ovrl"] - 0.3
    assert all(np.isnan(v) for v in dnsmos(np.zeros(16000)).values())  # never a perfect score


def test_an_empty_voice_folder_is_an_error_not_a_silent_fallback(tmp_path):
    from voiceconv.core.errors import VoiceconvError
    from voiceconv.eval.command import voice_files

    assert voice_files(None) is None
    with pytest.raises(VoiceconvError, match="no audio in"):
        voice_files(tmp_path)


def test_the_python_example_in_the_docs_measures_what_eval_measures(shifted_set, tmp_path,
                                                                      monkeypatch, capsys):
    """docs/eval.md's "From Python" example, run as written on one pair of the shifted set (a
    semitone up): 100 cents, every frame a gross error, the singer herself as the target."""
    root, _, _ = shifted_set
    stem = Path(CLIPS[0][1]).stem
    for name, folder in (("song.flac", "source"), ("song.converted.wav", "converted"),
                         ("reference.flac", "reference"), ("target_1.flac", "reference"),
                         ("target_2.flac", "source")):
        x, sr = sf.read(root / folder / CLIPS[0][0] / f"{stem}.wav")
        sf.write(tmp_path / name, x, sr)
    monkeypatch.chdir(tmp_path)
    run_docs_example("eval.md")
    printed = capsys.readouterr().out
    median, gross = map(float, re.search(r"melody: ([\d.]+) cents median deviation, "
                                         r"([\d.]+) % gross", printed).groups())
    assert abs(median - 100) < 5 and gross > 90
    assert float(re.search(r"MCD ([\d.]+) dB over \d+ frames", printed).group(1)) > 0.05
    similarity, ovrl = map(float, re.search(r"similarity to the target ([\d.]+), "
                                            r"DNSMOS OVRL ([\d.]+)", printed).groups())
    assert similarity > 0.8 and 1 <= ovrl <= 5
