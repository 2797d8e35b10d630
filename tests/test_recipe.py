"""The demo recipe's stage machinery (the prep stage itself is tested in test_prep.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import soundfile as sf
import torch

from tests.conftest import REPO, write_corpus

DEMO = REPO / "recipes" / "demo"


def _run(*args: str, cwd: Path, timeout: float = 120,
         script: str = "run.sh") -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", script, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _recipe_copy(tmp_path: Path) -> Path:
    """A copy of the demo recipe (audio linked), so tests never write into the repository."""
    root = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes" / "common", root / "common")
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns("audio", "data", "dump"))
    (root / "demo" / "audio").symlink_to(DEMO / "audio")
    return root / "demo"


def test_stage_0_lists_training_and_held_out_songs(tmp_path):
    demo = _recipe_copy(tmp_path)
    done = _run("--stage", "0", "--stop-stage", "0", cwd=demo)
    assert done.returncode == 0, done.stderr
    assert "common/local/data.sh audio data/demo" in done.stderr  # every stage logs its command
    train = (demo / "data/demo/train/wav.scp").read_text().splitlines()
    test = (demo / "data/demo/test/wav.scp").read_text().splitlines()
    assert len(train) == 21 and len(test) == 2
    assert {line.split()[0] for line in test} == {
        "nit_f001-nitech_jp_song070_f001_029", "pjs-pjs020_song"}
    for line in train + test:
        utt, path = line.split(" ", 1)
        assert Path(path).is_file()
    utt2spk = dict(line.split() for line in
                   (demo / "data/demo/train/utt2spk").read_text().splitlines())
    assert set(utt2spk.values()) == {"nit_f001", "pjs"}
    assert not (demo / "dump").exists()  # stage 1 was outside the range


def test_a_song_added_or_an_edited_prep_config_is_prepared_on_the_next_run(tmp_path):
    demo = _recipe_copy(tmp_path)
    songs = [("nit_f001", "nitech_jp_song070_f001_004.flac", 1.0, 3.0),
             ("nit_f001", "nitech_jp_song070_f001_007.flac", 1.0, 3.0),
             ("pjs", "pjs001_song.flac", 0.5, 3.0), ("pjs", "pjs020_song.flac", 0.5, 3.0)]
    corpus = write_corpus(tmp_path / "corpus", songs)
    prep = tmp_path / "prep.yaml"
    prep.write_text("features: {f0_method: dio}\n")
    args = ["--corpus", str(corpus), "--prep-config", str(prep), "--held-out",
            "nitech_jp_song070_f001_007 pjs020_song", "--stage", "0", "--stop-stage", "1"]
    assert _run(*args, cwd=demo).returncode == 0
    again = _run(*args, cwd=demo)
    assert again.returncode == 0 and "run: " not in again.stderr  # nothing changed

    write_corpus(corpus, [("pjs", "pjs002_song.flac", 0.5, 3.0)])
    grown = _run(*args, cwd=demo)
    assert grown.returncode == 0, grown.stderr
    ran = [line for line in grown.stderr.splitlines() if "run: " in line]
    assert len(ran) == 2 and "data.sh" in ran[0] and "voiceconv prep" in ran[1], grown.stderr
    assert "pjs-pjs002_song" in (demo / "data/demo/train/wav.scp").read_text()
    manifest = (demo / "dump/demo/prep/manifest.jsonl").read_text()
    assert "pjs002_song" in manifest and "pjs001_song" in manifest
    # An edited prep config prepares again, with the new settings.
    prep.write_text("features: {f0_method: dio}\nsegment: {max_s: 2.0}\n")
    edited = _run(*args, cwd=demo)
    assert edited.returncode == 0, edited.stderr
    ran = [line for line in edited.stderr.splitlines() if "run: " in line]
    assert len(ran) == 1 and "voiceconv prep" in ran[0], edited.stderr
    config = json.loads((demo / "dump/demo/prep/prep_config.json").read_text())
    assert config["segment"]["max_s"] == 2.0


def test_experiments_in_one_recipe_folder_keep_their_own_song_lists(tmp_path):
    """Two pairs prepared in one recipe folder, each with its own held-out song: a rerun of
    the first finds its own lists, so neither pair ever trains on the other's held-out song."""
    demo = _recipe_copy(tmp_path)
    corpus = write_corpus(tmp_path / "corpus", [
        ("nit_f001", "nitech_jp_song070_f001_004.flac", 1.0, 3.0),
        ("nit_f001", "nitech_jp_song070_f001_007.flac", 1.0, 3.0),
        ("pjs", "pjs001_song.flac", 0.5, 3.0), ("pjs", "pjs020_song.flac", 0.5, 3.0)])
    prep = tmp_path / "prep.yaml"
    prep.write_text("features: {f0_method: dio}\n")
    common = ["--corpus", str(corpus), "--prep-config", str(prep), "--stage", "0",
              "--stop-stage", "1"]
    first = [*common, "--exp", "first", "--held-out", "nitech_jp_song070_f001_004 pjs020_song"]
    second = [*common, "--exp", "second", "--held-out", "nitech_jp_song070_f001_007 pjs001_song"]
    for args in (first, second):
        done = _run(*args, cwd=demo)
        assert done.returncode == 0, done.stderr
    again = _run(*first, cwd=demo)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
    for exp, held_out in (("first", ("_004", "pjs020")), ("second", ("_007", "pjs001"))):
        manifest = (demo / f"dump/{exp}/prep/manifest.jsonl").read_text()
        test = (demo / f"data/{exp}/test/wav.scp").read_text()
        for song in held_out:
            assert song in test and song not in manifest, (exp, song)


@pytest.mark.parametrize("recipe", ["demo", "own_corpus", "mbrola", "pretrain"])
def test_every_recipe_prints_its_help_from_anywhere(recipe, tmp_path):
    """From the repository root (as the README runs them) and from elsewhere: the recipes
    that read their own options cd into their folder first, which made their relative $0
    unreadable to --help ("sed: can't read recipes/mbrola/run.sh")."""
    for cwd, script in ((REPO, f"recipes/{recipe}/run.sh"),
                        (tmp_path, str(REPO / "recipes" / recipe / "run.sh"))):
        done = subprocess.run(["bash", script, "--help"], cwd=cwd, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert "--stage" in done.stdout, done.stdout


def test_unknown_option_or_a_stage_that_is_not_a_number_is_refused(tmp_path):
    demo = _recipe_copy(tmp_path)
    done = _run("--stgae", "1", cwd=demo)
    assert done.returncode == 2 and "unknown option --stgae" in done.stderr
    done = _run("--stage", "one", cwd=demo)  # bash's test errors, then "done", exit 0, before
    assert done.returncode == 2
    assert done.stderr.strip().endswith("error: --stage must be a whole number (got 'one')")
    done = _run("--seed", "1.5", cwd=demo)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("error: --seed must be a whole number (got '1.5')")


def test_each_direction_can_have_its_own_vocoder(tmp_path):
    """--vocoder NAME renders both directions; "a2b=NAME b2a=NAME" one each (a direction left
    out gets world); a path is taken where the user ran the recipe; anything else is refused
    in one line."""
    demo = _recipe_copy(tmp_path)
    (tmp_path / "voc.ckpt").write_bytes(b"")

    def vocoders(spec: str) -> list[str]:
        done = _run("--stage", "4", "--stop-stage", "4", "--vocoder", spec, cwd=tmp_path,
                    script=str(demo / "run.sh"))
        assert done.returncode == 0, done.stderr
        return [line.split("vocoder ", 1)[1] for line in done.stderr.splitlines()
                if "stage 4: vocoder" in line]

    assert vocoders("griffin-lim") == ["griffin-lim (no training)"]
    assert vocoders("b2a=griffin-lim") == ["world (no training)", "griffin-lim (no training)"]
    assert vocoders("a2b=voc.ckpt b2a=world") == [f"{tmp_path / 'voc.ckpt'} (no training)",
                                                   "world (no training)"]
    # The demo's own choice (the singing vocoder into PJS) gives way to the user's.
    assert vocoders("a2b=world b2a=world") == ["world (no training)"]
    for spec in ("a2b=world c2d=world", "a2b="):
        done = _run("--stage", "4", "--stop-stage", "4", "--vocoder", spec, cwd=demo)
        assert done.returncode == 2
        assert done.stderr.strip().endswith(f"(got '{spec.split()[-1]}')"), done.stderr


def test_own_corpus_recipe_takes_a_kaldi_dir_and_names_what_is_missing(tmp_path):
    demo = _recipe_copy(tmp_path)
    own = demo.parent / "own_corpus"
    shutil.copytree(REPO / "recipes" / "own_corpus", own)
    missing = _run("--singer-a", "nit_f001", cwd=own)
    assert missing.returncode == 2 and "--corpus is required" in missing.stderr
    # The demo's data dir as a user's Kaldi-style corpus: songs held out by utterance id.
    assert _run("--stage", "0", "--stop-stage", "0", cwd=demo).returncode == 0
    kaldi = ["--corpus", str(demo / "data/demo/train"), "--stage", "0", "--stop-stage", "0"]
    done = _run(*kaldi, "--singer-a", "nit_f001", "--singer-b", "pjs", "--held-out",
                "nit_f001-nitech_jp_song070_f001_004 pjs-pjs001_song", cwd=own)
    assert done.returncode == 0, done.stderr
    assert (own / "data/own/test/utt2spk").read_text().split() == [
        "nit_f001-nitech_jp_song070_f001_004", "nit_f001", "pjs-pjs001_song", "pjs"]
    assert len((own / "data/own/train/wav.scp").read_text().splitlines()) == 19
    ids: dict[str, list[str]] = {}
    for line in (demo / "data/demo/train/utt2spk").read_text().splitlines():
        utt, singer = line.split()
        ids.setdefault(singer, []).append(utt)
    # Said at stage 0, before prep spends minutes on the corpus.
    for singers, held_out, error in (
            ("a b", "no_such_song", "held-out song no_such_song is not in"),
            ("nit_f001 pjs", "pjs-pjs001_song.flac",
             "(name it without its extension: pjs-pjs001_song)"),
            ("nit_f001 carol", "pjs-pjs001_song", "singer carol is not in"),
            ("nit_f001 pjs", "pjs-pjs001_song", "no held-out song of nit_f001: hold out one"),
            # One recording per singer, each held out: not "no audio found".
            ("nit_f001 pjs", " ".join(ids["nit_f001"] + ids["pjs"]),
             "every song of nit_f001 is held out: leave some to train on")):
        a, b = singers.split()
        wrong = _run(*kaldi, "--singer-a", a, "--singer-b", b, "--held-out", held_out, cwd=own)
        assert wrong.returncode != 0 and error in wrong.stderr, (singers, wrong.stderr)
    # A corpus named relative to where the user stands, though the recipe cds into its folder
    # ("recipes/demo/data/demo/train is neither a folder of <singer>/<song> files nor ...").
    pair = ["--singer-a", "nit_f001", "--singer-b", "pjs", "--held-out",
            "nit_f001-nitech_jp_song070_f001_004 pjs-pjs001_song", "--stage", "0",
            "--stop-stage", "0"]
    for corpus, says in (("recipes/demo/data/demo/train", "data/relative/train: 19 songs"),
                         ("recipes/demo/data/demo/trian", "no corpus at recipes/demo/data/")):
        relative = _run("--corpus", corpus, *pair, "--exp", "relative", cwd=tmp_path,
                        script="recipes/own_corpus/run.sh")
        assert says in relative.stderr, relative.stderr


# Two training excerpts and the held-out song of each demo singer, 8-10 s each.
E2E_AUDIO = [
    ("nit_f001", "nitech_jp_song070_f001_004.flac", 1.0, 10.0),
    ("nit_f001", "nitech_jp_song070_f001_007.flac", 1.0, 10.0),
    ("nit_f001", "nitech_jp_song070_f001_029.flac", 1.0, 8.0),
    ("pjs", "pjs001_song.flac", 0.5, 10.0),
    ("pjs", "pjs002_song.flac", 0.5, 10.0),
    ("pjs", "pjs020_song.flac", 0.5, 8.0),
]
TINY = ("--data.init_args.crop_frames 32 --data.init_args.batch_size 2 "
        "--data.init_args.val_segments 1 --wandb false --preview_every_n_steps 0 "
        "--trainer.val_check_interval 2 --checkpoint_every_n_steps 2 "
        "--trainer.enable_progress_bar false")


def test_a_shipped_part_given_by_name_is_an_input_whose_update_reruns_the_stage(tmp_path):
    """Stages 5-6 depend on the vocoder's file: `--vocoder pretrained:NAME` stamps the shipped
    file, so a newer one (from a `git pull`) converts the songs again."""
    (tmp_path / "voc.pt").write_bytes(b"first")

    def stamp() -> str:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
               f"{os.environ['PATH']}", "VOICECONV_PRETRAINED": str(tmp_path)}
        return subprocess.run(["bash", "-c", f'. "{REPO}/recipes/common/lib.sh" && stamp '
                               "pretrained:voc pretrained:missing"], env=env, check=True,
                              capture_output=True, text=True).stdout

    first = stamp()
    assert str(tmp_path / "voc.pt") in first and "missing" not in first
    (tmp_path / "voc.pt").write_bytes(b"a newer one")
    assert stamp() != first


@pytest.mark.slow
def test_the_demo_runs_every_stage_end_to_end_and_a_rerun_does_nothing(tmp_path):
    demo = _recipe_copy(tmp_path)
    audio = write_corpus(tmp_path / "audio", E2E_AUDIO)
    prep = tmp_path / "prep.yaml"
    prep.write_text("features: {f0_method: dio}\n")  # the F0 tracker ~25x faster than harvest
    args = ["--corpus", str(audio), "--prep-config", str(prep), "--exp", "e2e", "--ngpu", "0",
            "--fit-steps", "4", "--fit-args", TINY]
    # Runs of other experiments (a base of the corpus's own singers, the vocoders) go beside
    # those of this one: each process has one thread, and the machine has two cores.
    pool = ThreadPoolExecutor(1)
    # ... trained from another seed (weights, masks, crops), as repeats of an experiment are.
    own = pool.submit(_run, *args, "--base", "corpus", "--pretrain-steps", "4",
                      "--pretrain-args", TINY, "--exp", "e2e-own", "--stage", "0",
                      "--stop-stage", "3", "--seed", "7", cwd=demo, timeout=300)
    done = _run(*args, cwd=demo, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in range(7):  # every stage ran and logged its exact commands
        assert f"stage {stage}:" in done.stderr
    assert "run: voiceconv fit" in done.stderr and "--trainer.accelerator cpu" in done.stderr
    # Into PJS the songs are rendered by the shipped singing vocoder, into NIT-F001 by WORLD.
    converts = [line for line in done.stderr.splitlines() if "run: voiceconv convert" in line]
    assert len(converts) == 2
    assert "--direction a2b --vocoder pretrained:nsf-singing-lite-v2" in converts[0]
    assert "--direction b2a --vocoder world" in converts[1]
    exp = demo.parent.parent / "checkpoints"
    assert len((demo / "dump/e2e/prep/manifest.jsonl").read_text().splitlines()) >= 4
    # By default the pair starts from the base that ships; nothing is pretrained.
    assert "nothing to pretrain (base: pretrained:singing-base-small)" in done.stderr
    model = torch.load(exp / "e2e" / "checkpoints" / "last.ckpt", weights_only=True)
    assert model["global_step"] == 4
    assert model["hyper_parameters"]["init_from"] == "pretrained:singing-base-small"
    for direction, song, seconds in (("a2b", "nitech_jp_song070_f001_029", 8.0),
                                     ("b2a", "pjs020_song", 8.0)):
        converted = exp / "e2e" / "converted" / direction / f"{song}.wav"
        assert sf.info(converted).duration == pytest.approx(seconds, abs=0.01)
        report = exp / "e2e" / "eval" / direction
        assert (report / "report.html").stat().st_size > 1000
        metrics = json.loads((report / "metrics.json").read_text())
        # Converted into the target's range (PJS sings ~an octave below NIT-F001), and the
        # melody measured up to that key.
        assert (metrics["f0_key_semitones"] < 0) == (direction == "a2b"), metrics
    assert "reports:" in done.stderr and "converted songs:" in done.stderr

    again = _run(*args, cwd=demo, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to do" in again.stderr and "run: " not in again.stderr
    own = own.result()
    assert own.returncode == 0, own.stderr[-3000:]
    base = torch.load(exp / "e2e-own-base" / "checkpoints" / "last.ckpt", weights_only=True)
    assert base["global_step"] == 4
    own_model = torch.load(exp / "e2e-own" / "checkpoints" / "last.ckpt", weights_only=True)
    assert own_model["hyper_parameters"]["init_from"].endswith("e2e-own-base/checkpoints/last.ckpt")
    for trained in (base, own_model):
        assert trained["hyper_parameters"]["seed"] == 7
        assert trained["datamodule_hyper_parameters"]["seed"] == 7

    def vocoder(size: str) -> subprocess.CompletedProcess:
        return _run(*args, "--vocoder", f"nsf-{size}", "--vocoder-steps", "2", "--vocoder-args",
                    TINY, "--stage", "4", "--stop-stage", "4", cwd=demo, timeout=300)

    # The small NSF-HiFi-GAN (from scratch) and the lite one (the universal filter's kernel-3
    # stacks), each trained on the recipe's prep output with its own config.
    vocoders = {size: pool.submit(vocoder, size) for size in ("small", "lite")}
    # Asking for more training reruns only what that changes: the fit (resumed) and after.
    more = _run(*args, "--fit-steps", "6", "--stage", "3", "--stop-stage", "3", cwd=demo,
                timeout=300)
    assert more.returncode == 0, more.stderr[-3000:]
    assert "run: voiceconv fit" in more.stderr and "stage 4" not in more.stderr
    assert torch.load(exp / "e2e" / "checkpoints" / "last.ckpt",
                      weights_only=True)["global_step"] == 6
    # The conversions follow the model: trained further, the songs are converted again.
    again = _run(*args, "--fit-steps", "6", "--stage", "5", "--stop-stage", "5", cwd=demo,
                 timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("run: voiceconv convert") == 2, again.stderr[-3000:]
    # Another vocoder for one direction converts that direction again, and only that one.
    other = _run(*args, "--fit-steps", "6", "--stage", "5", "--stop-stage", "5", "--vocoder",
                 "a2b=griffin-lim b2a=world", cwd=demo, timeout=300)
    assert other.returncode == 0, other.stderr[-3000:]
    runs = [line for line in other.stderr.splitlines() if "run: voiceconv convert" in line]
    assert len(runs) == 1 and "--direction a2b --vocoder griffin-lim" in runs[0], other.stderr
    for size, field, value in (("small", "upsample_initial_channel", 128),
                               ("lite", "resblock_kernel_sizes", [3])):
        trained_vocoder = vocoders[size].result()
        assert trained_vocoder.returncode == 0, trained_vocoder.stderr[-3000:]
        assert f"nsf_hifigan_{size}.yaml" in trained_vocoder.stderr
        trained = torch.load(exp / f"e2e-vocoder-{size}" / "checkpoints" / "last.ckpt",
                             weights_only=True)
        assert trained["global_step"] == 2
        assert trained["hyper_parameters"]["nsf"][field] == value
    pool.shutdown()


def test_a_pretraining_pool_of_other_singers_needs_its_own_name(tmp_path):
    """recipes/pretrain shares data/<pool> and dump/<pool> across its experiments: pointing
    the same pool at other singers stops, instead of training a base on whoever is there."""
    root = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes" / "common", root / "common")
    shutil.copytree(REPO / "recipes" / "pretrain", root / "pretrain",
                    ignore=shutil.ignore_patterns("data", "dump"))
    first = write_corpus(tmp_path / "first", [("nit_f001", "nitech_jp_song070_f001_004.flac",
                                               1.0, 1.0)])
    other = write_corpus(tmp_path / "other", [("pjs", "pjs001_song.flac", 0.5, 1.0)])

    def stage_0(singing: Path, *more: str) -> subprocess.CompletedProcess:
        return _run("--singing", str(singing), "--mbrola", str(tmp_path / "none"),
                    "--stage", "0", "--stop-stage", "0", *more, cwd=root / "pretrain")

    assert stage_0(first).returncode == 0
    assert stage_0(first).returncode == 0  # the same pool again is fine
    refused = stage_0(other)
    assert refused.returncode == 2
    assert "give this one another --pool NAME" in refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr  # one line, no traceback
    assert "nit_f001" in (root / "pretrain/data/pool/wav.scp").read_text()  # left as it was
    assert stage_0(other, "--pool", "other").returncode == 0
    listed = (root / "pretrain/data/other/wav.scp").read_text()
    assert "pjs001_song" in listed and "nit_f001" not in listed
    # Any format the other recipes take, in folders below the singer's (it took
    # <singer>/*.flac only: a corpus of wav files was a pool of nothing).
    x, sr = sf.read(other / "pjs" / "pjs001_song.flac")
    (other / "pjs" / "album").mkdir()
    sf.write(other / "pjs" / "album" / "take2.wav", x, sr)
    assert stage_0(other, "--pool", "other").returncode == 0
    listed = (root / "pretrain/data/other/wav.scp").read_text().splitlines()
    assert [line.split()[0] for line in listed] == ["pjs-take2", "pjs-pjs001_song"]
    # A mistyped corpus is refused, not a pool of whatever else there is.
    typo = stage_0(tmp_path / "othr", "--pool", "typo")
    assert typo.returncode == 2 and typo.stderr.count("\n") == 1
    assert f"--singing {tmp_path / 'othr'}: no such folder" in typo.stderr


def test_a_recipe_edited_while_it_runs_finishes_as_it_began(tmp_path):
    """Bash reads a script as it runs it: a recipe file saved in place during a long stage
    (a fit of hours on a cluster) used to go on from a shifted offset, with a syntax error
    after the stage. The recipes are one block, read whole before they start."""
    demo = _recipe_copy(tmp_path)
    local = demo.parent / "common" / "local"
    (local / "data.sh").rename(local / "data_as_shipped.sh")
    edit = ('svc="$(dirname "$0")/../svc.sh"; body=$(cat "$svc")\n'
            'printf "# a comment added while the recipe ran\\n%s\\n" "$body" > "$svc"\n')
    (local / "data.sh").write_text(
        f'#!/usr/bin/env bash\n{edit}exec bash "$(dirname "$0")/data_as_shipped.sh" "$@"\n')
    (local / "data.sh").chmod(0o755)
    done = _run("--stage", "0", "--stop-stage", "0", cwd=demo)
    assert (demo.parent / "common/svc.sh").read_text().startswith("# a comment added")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("done (stages 0..0: 1 run, 0 done already)"), done.stderr
    assert (demo / "data/demo/test/wav.scp").is_file()
