"""The prep pipeline on real singing excerpts: outcomes, determinism, resumability."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from itertools import pairwise

import numpy as np
import soundfile as sf

from data_prep.config import PrepConfig
from data_prep.pipeline import run_prep
from data_prep.prepared import load_features, load_stats
from tests.conftest import REPO, read_excerpt, run_docs_example
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.fileio import TEMP_MARKER, read_jsonl
from voiceconv.core.loudness import integrated_loudness

REQUIRED = {"id", "singer", "source", "start", "end", "duration", "sample_rate", "hash",
            "features", "stage"}


def test_every_segment_has_aligned_features(prepared):
    rows = read_jsonl(prepared.out_dir / "manifest.jsonl")
    assert {r["singer"] for r in rows} == {"nit_f001", "pjs"}
    config = FeatureConfig.load(prepared.out_dir / "feature_config.json")
    assert config == PrepConfig().features
    seg = PrepConfig().segment
    for row in rows:
        assert set(row) >= REQUIRED and row["stage"] == "features"
        assert seg.min_s <= row["duration"] <= seg.max_s + 2 * seg.pad_s
        feats = load_features(prepared.out_dir / row["features"])
        n = feats["mel"].shape[1]
        assert feats["mel"].shape == (config.n_mels, n) and n == row["n_frames"]
        assert feats["f0"].shape == feats["voiced"].shape == (n,)
        assert feats["audio"].shape == (n * config.hop_length,)
        assert np.isfinite(feats["mel"]).all()
    # Real singing is mostly voiced; segments were cut around the singing, not the pauses.
    assert np.mean([r["voiced_fraction"] for r in rows]) > 0.7


def test_segments_are_within_their_source_and_do_not_overlap(prepared):
    rows = read_jsonl(prepared.out_dir / "manifest.jsonl")
    by_source: dict[str, list] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append((row["start"], row["end"]))
    for spans in by_source.values():
        spans.sort()
        assert spans[0][0] >= 0 and all(a[1] <= b[0] for a, b in pairwise(spans))
        assert spans[-1][1] <= 10.0 + 1e-6  # excerpts are 10 s long


def test_cleaned_audio_is_at_the_target_loudness(prepared):
    target = PrepConfig().clean.target_lufs
    rows = read_jsonl(prepared.out_dir / "stages/clean.jsonl")
    assert len(rows) == 4
    for row in rows:
        x, sr = sf.read(prepared.out_dir / row["audio"])
        assert sr == 22050
        assert abs(integrated_loudness(x, sr) - target) < 0.5
        assert abs(x.mean()) < 1e-4  # DC removed


def test_stats_describe_each_singer(prepared):
    stats = load_stats(prepared.out_dir)
    assert set(stats) == {"nit_f001", "pjs"}
    for singer in stats.values():
        assert len(singer["mel_mean"]) == len(singer["mel_std"]) == 80
        assert all(s > 0 for s in singer["mel_std"])
        p = singer["f0_percentiles_hz"]
        # Sung medians: NIT-F001 about 400 Hz, PJS about an octave lower.
        assert 150 < p["p50"] < 700 and p["p5"] < p["p50"] < p["p95"]
        assert abs(np.exp(singer["lf0_mean"]) - p["p50"]) / p["p50"] < 0.2
    assert (prepared.out_dir / "stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_does_no_work_and_keeps_the_manifest_byte_identical(prepared, excerpt_corpus):
    out = prepared.out_dir
    before = (out / "manifest.jsonl").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    again = run_prep(excerpt_corpus, out, jobs=1, progress=False)
    assert [s.computed for s in again.stages] == [0, 0, 0, 0, 0]
    assert not again.stats_written
    assert (out / "manifest.jsonl").read_bytes() == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == stamps


def test_a_deleted_output_file_is_made_again(prepared, excerpt_corpus, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(prepared.out_dir, out)
    victim = out / read_jsonl(out / "manifest.jsonl")[0]["features"]
    victim.unlink()
    report = run_prep(excerpt_corpus, out, jobs=1, progress=False)
    assert [s.computed for s in report.stages][:4] == [0, 0, 0, 1]
    assert victim.is_file()
    assert (out / "manifest.jsonl").read_bytes() == (prepared.out_dir / "manifest.jsonl"
                                                      ).read_bytes()


def test_two_jobs_give_exactly_the_result_of_one(prepared, excerpt_corpus, tmp_path):
    report = run_prep(excerpt_corpus, tmp_path, jobs=2, progress=False)
    assert report.stages[-1].computed > 0
    for name in ("manifest.jsonl", "rejects.jsonl", "stats.json", "stages/clean.jsonl"):
        assert (tmp_path / name).read_bytes() == (prepared.out_dir / name).read_bytes(), name
    for row in read_jsonl(tmp_path / "manifest.jsonl"):
        one, two = (load_features(d / row["features"]) for d in (prepared.out_dir, tmp_path))
        for key in one:
            np.testing.assert_array_equal(one[key], two[key])


def test_adding_a_file_processes_only_that_file(prepared, excerpt_corpus, tmp_path):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    shutil.copytree(excerpt_corpus, corpus)
    shutil.copytree(prepared.out_dir, out)
    x, sr = read_excerpt("pjs", "pjs003_song.flac", 0.5, 6.0)
    sf.write(corpus / "pjs" / "pjs003_song.flac", x, sr)
    report = run_prep(corpus, out, jobs=1, progress=False)
    ingest, clean, segment, features, _ = report.stages
    assert (ingest.computed, clean.computed, segment.computed) == (1, 1, 1)
    assert (ingest.reused, clean.reused, segment.reused) == (4, 4, 4)
    new_rows = [r for r in features.rows if r["source"] == "pjs/pjs003_song.flac"]
    assert features.computed == len(new_rows) >= 1
    assert report.stats_written


def test_kill_9_then_rerun_gives_the_uninterrupted_manifest(prepared, excerpt_corpus, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "data_prep", str(excerpt_corpus), str(out), "--jobs", "1",
           "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(out.glob("features/**/*.npz"))) < 2:  # kill it inside the features stage
        assert time.monotonic() < deadline and proc.poll() is None, "prep ended too early"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.jsonl").exists()
    # Whatever is visible under a final name is complete.
    for npz in (out / "features").rglob("*.npz"):
        assert TEMP_MARKER not in npz.name
        load_features(npz)
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "manifest.jsonl").read_bytes() == (prepared.out_dir / "manifest.jsonl"
                                                      ).read_bytes()
    assert not [p for p in out.rglob(f"*{TEMP_MARKER}*")]


def test_kaldi_data_dir_gives_the_segments_of_the_folder_layout(prepared, excerpt_corpus,
                                                                tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    files = sorted(excerpt_corpus.glob("*/*.flac"))
    utts = [f"{f.parent.name}-{f.stem}" for f in files]
    (data / "wav.scp").write_text(
        "".join(f"{u} {f}\n" for u, f in zip(utts, files, strict=True))
        + "piped-utt sox in.wav -t wav - |\n")
    (data / "utt2spk").write_text(
        "".join(f"{u} {f.parent.name}\n" for u, f in zip(utts, files, strict=True))
        + "piped-utt pjs\n")
    report = run_prep(data, tmp_path / "out", stages=("ingest", "clean", "segment"),
                      progress=False)
    assert [r["reason"] for r in report.rejects if r["source"] == "piped-utt"] == [
        "piped wav.scp commands are not supported; give a path"]

    def spans(rows):
        return sorted((r["singer"], r["hash"], r["start"], r["end"]) for r in rows)

    assert spans(report.rows) == spans(read_jsonl(prepared.out_dir / "manifest.jsonl"))
    assert {r["source"] for r in report.rows} == set(utts)


def test_the_python_example_in_the_docs_runs(prepared, excerpt_corpus, tmp_path, monkeypatch,
                                             capsys):
    """docs/prep.md's "From Python" example, run as written where a prep output of the excerpt
    corpus already is (so it resumes, computing nothing): it prints what the output holds."""
    shutil.copytree(excerpt_corpus, tmp_path / "corpus")
    shutil.copytree(prepared.out_dir, tmp_path / "prep")
    monkeypatch.chdir(tmp_path)
    run_docs_example("prep.md")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{len(prepared.rows)} segments, 0 inputs rejected"
    assert re.fullmatch(r"nit_f001: median F0 \d+ Hz", lines[1])
    assert re.fullmatch(r"pjs: median F0 \d+ Hz", lines[2])
    assert re.fullmatch(r"\S+ \(80, \d+\) \d+% voiced", lines[3])
