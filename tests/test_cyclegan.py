"""CycleGAN-VC training through `voiceconv fit` on real singing (the excerpt corpus, prepared
once per session): loss terms, configs, exact resume after kill -9 and SIGTERM, DDP, the
feature-config guard, and that training actually learns."""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import signal
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import REPO
from voiceconv.cli import run_command
from voiceconv.core.cpu import runs_bf16_fast
from voiceconv.core.feature_config import FeatureConfig
from voiceconv.core.neighbours import neighbour_means
from voiceconv.fit.cyclegan import load_model
from voiceconv.fit.data import SingerPairData

SMALL = REPO / "recipes" / "common" / "conf" / "cyclegan_small.yaml"
PAPER = REPO / "recipes" / "common" / "conf" / "cyclegan_paper.yaml"
LOSS_TERMS = ["train/g_adversarial", "train/g_cycle", "train/g_identity",
              "train/g_two_step_adversarial", "train/d_a_real", "train/d_a_fake",
              "train/d2_b_real", "train/d2_b_fake", "train/g_loss", "train/d_loss",
              "grad_norm/generators", "grad_norm/discriminators", "lr/generators"]


def fit(*args: str) -> int:
    return run_command("fit", [str(a) for a in args])


def fit_process(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "voiceconv.cli", "fit", *map(str, args)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def metrics(exp_dir: Path) -> list[dict[str, str]]:
    with open(exp_dir / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def last_values(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key)]


def exp_dir(config: Path, name: str) -> Path:
    return Path(yaml.safe_load(config.read_text())["experiments_root"]) / name


@pytest.mark.parametrize("size", [SMALL, PAPER], ids=["small", "paper"])
def test_a_few_steps_log_every_loss_term_checkpoints_and_previews(size, fit_config):
    name = f"few-{size.stem}"
    args = ["--config", size, "--config", fit_config, "--experiment", name]
    if size == PAPER:  # the paper-sized model on CPU: two steps are enough to run every path
        args += ["--trainer.max_steps", "2", "--model.init_args.discriminator.channels", "16"]
    assert fit(*args) == 0
    out = exp_dir(fit_config, name)
    rows = metrics(out)
    for term in LOSS_TERMS + (["train/g_neighbour"] if size == SMALL else []):
        values = last_values(rows, term)
        assert values and all(math.isfinite(v) for v in values), term
    for key in ("val/mcd_cycle_a", "val/mcd_mean_envelope", "val/mcd_mean_envelope_source"):
        assert all(math.isfinite(v) and v > 0 for v in last_values(rows, key)), key
    assert (out / "config.yaml").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    assert list((out / "checkpoints").glob("best-*.ckpt"))
    assert [p.name for p in (out / "checkpoints").glob("last*")] == ["last.ckpt"]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # drawn at the end
    preview = out / "previews" / "step_0000002"
    assert (preview / "mels.png").stat().st_size > 1000
    assert {p.name for p in preview.glob("*.flac")} == {
        "A.flac", "A_to_B.flac", "A_to_B_to_A.flac", "B.flac", "B_to_A.flac"}
    model = load_model(out / "checkpoints" / "last.ckpt")  # weights_only: plain data only
    assert model.hparams.singer_stats["a"]["name"] == "nit_f001"
    assert FeatureConfig.from_dict(model.hparams.feature_config) == FeatureConfig()


def test_global_step_counts_training_steps_not_optimizer_calls(fit_config):
    assert fit("--config", SMALL, "--config", fit_config, "--experiment", "steps",
               "--trainer.max_steps", "3", "--preview_every_n_steps", "0") == 0
    ckpt = torch.load(exp_dir(fit_config, "steps") / "checkpoints" / "last.ckpt",
                      weights_only=True)
    assert ckpt["global_step"] == 3
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 3  # both schedulers stepped per step
    assert all(s["state"][0]["step"] == 3 for s in ckpt["optimizer_states"])


def generator_weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith(("g_ab.", "g_ba."))}


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.slow
def test_resume_after_kill_or_sigterm_equals_uninterrupted_training(fit_config, tmp_path):
    """2N steps straight vs N steps, killed (-9) or stopped (SIGTERM) mid-way, resumed to 2N.
    The four runs are independent processes of one thread each, so they run two at a time."""
    n = 3
    common = ["--config", SMALL, "--config", fit_config, "--trainer.max_steps", 2 * n,
              "--checkpoint_every_n_steps", n, "--preview_every_n_steps", "0",
              "--trainer.val_check_interval", n, "--ckpt_path", "last"]

    def signal_config(name: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"trainer": {"callbacks": [
            {"class_path": "tests.helpers.SignalAtStep",
             "init_args": {"step": n + 1, "signal_name": name}}]}}))
        return path

    def straight() -> Path:
        fit_process(*common, "--experiment", "straight")
        return exp_dir(fit_config, "straight") / "checkpoints" / "last.ckpt"

    def killed() -> Path:  # kill -9 after step n + 1: only the checkpoint of step n survives
        stopped = fit_process(*common, "--experiment", "killed", "--config",
                              signal_config("SIGKILL"), check=False)
        assert stopped.returncode == -9
        last = exp_dir(fit_config, "killed") / "checkpoints" / "last.ckpt"
        assert torch.load(last, weights_only=True)["global_step"] == n
        assert not list(last.parent.glob("*.tmp-*"))
        fit_process(*common, "--experiment", "killed")
        return last

    def terminated() -> Path:  # SIGTERM after step n + 1: last.ckpt of that step, then stop
        stopped = fit_process(*common, "--experiment", "term", "--config",
                              signal_config("SIGTERM"), check=False)
        assert stopped.returncode == 128 + signal.SIGTERM  # unfinished: a recipe reruns it
        last = exp_dir(fit_config, "term") / "checkpoints" / "last.ckpt"
        assert torch.load(last, weights_only=True)["global_step"] == n + 1
        fit_process(*common, "--experiment", "term")
        return last

    def extended() -> Path:  # a finished run of n steps, extended to 2n, logged to wandb
        runs = [fit_process(*common, "--experiment", "extended", "--wandb", "true", *more)
                for more in (["--trainer.max_steps", n], [])]
        out = exp_dir(fit_config, "extended")
        # Offline (for `wandb sync` later), one wandb run across the restart, and nothing in
        # the output about clouds: no Lightning cloud-logger tip, no wandb deprecation warning
        # for the `anonymous` setting Lightning passes.
        wandb_runs = list((out / "wandb").glob("offline-run-*"))
        assert wandb_runs and all(next(r.glob("run-*.wandb")).stat().st_size > 0
                                  for r in wandb_runs)
        assert len({r.name.rsplit("-", 1)[-1] for r in wandb_runs}) == 1
        for run in runs:
            assert "litlogger" not in run.stderr and "anonymous" not in run.stderr, run.stderr
        return out / "checkpoints" / "last.ckpt"

    with ThreadPoolExecutor(2) as pool:
        runs = {run.__name__: pool.submit(run) for run in (killed, terminated, extended, straight)}
    weights = {name: generator_weights(run.result()) for name, run in runs.items()}
    for name in ("killed", "terminated", "extended"):
        assert max_difference(weights["straight"], weights[name]) <= 1e-6, name
    # The extended run logs validations at the same steps (last.ckpt written at the end of
    # training must not shift the loggers' step).
    expected = [n - 1, 2 * n - 1]  # Lightning logs a validation at the step before it
    assert validation_steps(fit_config, "straight") == expected
    assert validation_steps(fit_config, "extended") == expected


@pytest.mark.slow
@pytest.mark.parametrize("validation_pairs", [1, 2],
                         ids=["after_the_step", "between_validation_batches"])
def test_a_sigterm_after_the_steps_callbacks_still_saves_that_step(fit_config, tmp_path,
                                                                    validation_pairs):
    """Lightning ends a run with SIGTERMException where it next looks: at the end of the step
    (while it logs and validates) or between validation batches. A signal there, after the
    step's callbacks looked, must still save the step, and the run resume from it exactly."""
    common = ["--config", SMALL, "--config", fit_config, "--trainer.max_steps", 4,
              "--checkpoint_every_n_steps", 100, "--preview_every_n_steps", "0",
              "--ckpt_path", "last"]
    if validation_pairs == 2:  # every prepared segment: two pairs, two validation batches
        prep = yaml.safe_load(fit_config.read_text())["data"]["init_args"]["prep_dir"]
        common += ["--data.init_args.val_prep_dir", prep]
    signal_config = tmp_path / "late.yaml"
    signal_config.write_text(yaml.safe_dump({"trainer": {"callbacks": [
        {"class_path": "tests.helpers.SignalAtStep",
         "init_args": {"step": 2, "signal_name": "SIGTERM", "in_validation": True}}]}}))
    straight, late = (f"{name}-{validation_pairs}" for name in ("straight", "late"))

    def stopped_and_resumed() -> Path:
        stopped = fit_process(*common, "--experiment", late, "--config", signal_config,
                              check=False)
        assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-3000:]
        last = exp_dir(fit_config, late) / "checkpoints" / "last.ckpt"
        assert torch.load(last, weights_only=True)["global_step"] == 2
        fit_process(*common, "--experiment", late)
        return last

    with ThreadPoolExecutor(2) as pool:
        resumed = pool.submit(stopped_and_resumed)
        fit_process(*common, "--experiment", straight)
    weights = generator_weights(exp_dir(fit_config, straight) / "checkpoints" / "last.ckpt")
    assert max_difference(weights, generator_weights(resumed.result())) <= 1e-6


def test_sigterm_to_the_whole_job_with_loader_workers_still_saves(fit_config, tmp_path):
    """SLURM's pre-emption and `timeout` signal every process of the job, the loader workers
    too: the run must still save the step it reached and exit as interrupted, not die of a
    DataLoader error."""
    config = yaml.safe_load(fit_config.read_text())
    config["data"]["class_path"] = "tests.helpers.SlowPairData"  # the signal finds it waiting
    config["trainer"]["callbacks"] = [
        {"class_path": "tests.helpers.SignalAtStep",
         "init_args": {"step": 2, "signal_name": "SIGTERM", "process_group": True}}]
    signal_config = tmp_path / "group.yaml"
    signal_config.write_text(yaml.safe_dump(config))
    # PYTHONFAULTHANDLER: should the run die in C code (a rare heap corruption, seen only in
    # full suites), its stderr shows the Python stack of every thread.
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "PYTHONFAULTHANDLER": "1"}
    stopped = subprocess.run(
        [sys.executable, "-m", "voiceconv.cli", "fit", "--config", str(SMALL), "--config",
         str(signal_config), "--experiment", "group",
         "--data.init_args.num_workers", "2", "--trainer.max_steps", "6",
         "--preview_every_n_steps", "0", "--trainer.val_check_interval", "6",
         "--checkpoint_every_n_steps", "100"],  # so last.ckpt is the one saved on the signal
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        start_new_session=True)  # its own process group, so the signal spares pytest
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-6000:]
    last = exp_dir(fit_config, "group") / "checkpoints" / "last.ckpt"
    assert 2 <= torch.load(last, weights_only=True)["global_step"] < 6  # the step it reached


LOADER_THAT_OUTLIVES_ITS_JOB = """
import signal, sys, torch
from torch.utils.data import DataLoader, IterableDataset
from voiceconv.training.crops import stop_signal_policy

class Counting(IterableDataset):
    def __iter__(self):
        i = 0
        while True:
            yield torch.tensor(i)
            i += 1

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the trainer, which saves on the signal
    start = sys.argv[1]
    batches = iter(DataLoader(Counting(), batch_size=None, num_workers=1,
                              multiprocessing_context=start,
                              worker_init_fn=stop_signal_policy(start)))
    next(batches)
    print("waiting", flush=True)
    sys.stdin.readline()
    print(*(int(next(batches)) for _ in range(6)), flush=True)
"""  # it exits with `batches` alive, as a trainer does whose iterator is in a reference cycle


@pytest.mark.parametrize("start", ["fork", "forkserver"])  # Linux's default, and from 3.14
def test_a_loader_worker_outlives_the_jobs_stop_signal_and_not_the_trainers_exit(start,
                                                                                 tmp_path):
    """The job's SIGTERM (from outside) leaves the worker making batches; the trainer's own
    stop at exit (multiprocessing terminates its workers) ends it, or the exit hangs."""
    script = tmp_path / "job.py"
    script.write_text(LOADER_THAT_OUTLIVES_ITS_JOB)
    job = subprocess.Popen([sys.executable, str(script), start], cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           start_new_session=True)
    try:
        assert job.stdout.readline() == "waiting\n"
        os.killpg(job.pid, signal.SIGTERM)
        out, _ = job.communicate("go\n", timeout=60)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert out.split() == [str(i) for i in range(1, 7)]  # batches after the signal too
    assert job.returncode == 0


def validation_steps(fit_config: Path, experiment: str) -> list[int]:
    with open(exp_dir(fit_config, experiment) / "metrics.csv") as fh:
        return [int(row["step"]) for row in csv.DictReader(fh)
                if any(v for k, v in row.items() if k.startswith("val/"))]


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_trains_and_resumes(fit_config):
    common = ["--config", SMALL, "--config", fit_config, "--experiment", "ddp",
              "--trainer.strategy", "ddp", "--trainer.devices", "2",
              "--trainer.accelerator", "cpu", "--preview_every_n_steps", "0",
              "--ckpt_path", "last"]
    fit_process(*common, "--trainer.max_steps", "2")
    last = exp_dir(fit_config, "ddp") / "checkpoints" / "last.ckpt"
    assert 2 <= torch.load(last, weights_only=True)["global_step"] < 6  # the step it reached
    fit_process(*common, "--trainer.max_steps", "4")
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_print_config_output_runs_again(fit_config, tmp_path):
    printed = fit_process("--config", SMALL, "--config", fit_config, "--print_config").stdout
    config = tmp_path / "printed.yaml"
    config.write_text(printed)
    resolved = yaml.safe_load(printed)
    assert resolved["model"]["init_args"]["generator"]["channels"] == 16
    assert resolved["data"]["init_args"]["crop_frames"] == 32
    assert fit("--config", config, "--experiment", "printed", "--trainer.max_steps", "1",
               "--preview_every_n_steps", "0") == 0


def test_the_model_takes_its_features_from_the_data_and_refuses_a_misfit(fit_config, prepared,
                                                                          capsys):
    """The feature config, singer statistics and neighbour_k are set once, in the data config,
    and handed to the model as both are built; a model that cannot take them is one line."""
    assert fit("--config", SMALL, "--config", fit_config, "--experiment", "linked",
               "--trainer.max_steps", "1", "--preview_every_n_steps", "0") == 0
    hp = torch.load(exp_dir(fit_config, "linked") / "checkpoints" / "last.ckpt",
                    weights_only=True)["hyper_parameters"]
    assert hp["feature_config"] == json.loads(
        (prepared.out_dir / "feature_config.json").read_text())
    assert hp["singer_stats"]["b"]["name"] == "pjs" and hp["neighbour_k"] == 4
    # It keeps each singer's normalised training frames, for conversions matched to them.
    banks = torch.load(exp_dir(fit_config, "linked") / "checkpoints" / "last.ckpt",
                       weights_only=True)["frame_banks"]
    data = SingerPairData(**yaml.safe_load(fit_config.read_text())["data"]["init_args"])
    data.setup("fit")
    assert all(torch.equal(banks[s], data.train_set.mels[s]) for s in ("a", "b"))
    capsys.readouterr()
    code = fit("--config", SMALL, "--config", fit_config, "--experiment", "misfit",
               "--model.init_args.generator.n_mels", "40")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert "n_mels: model 40 vs data 80" in err[0]
    code = fit("--config", SMALL, "--config", fit_config, "--experiment", "no-neighbours",
               "--data.init_args.neighbour_k", "0")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "set data.neighbour_k" in err[0]


def test_each_run_says_whether_it_resumes_starts_or_replaces_a_run(fit_config, caplog):
    """In voiceconv's words, not Lightning's warnings: a first `--ckpt_path last` run was
    told to set up a last checkpoint (it has one), and every resume that its folder is not
    empty; a new run in a used experiment folder replaced that run without a word."""
    args = ["--config", SMALL, "--config", fit_config, "--experiment", "said",
            "--trainer.max_steps", "1", "--preview_every_n_steps", "0"]
    said = []
    for more in (["--ckpt_path", "last"], ["--ckpt_path", "last", "--trainer.max_steps", "2"],
                 []):
        caplog.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert fit(*args, *more) == 0
        said.append(caplog.text + "".join(str(w.message) for w in caught))
    assert "nothing to resume in" in said[0] and "holds a run already" not in said[0]
    assert "Restoring states" in said[1] and "nothing to resume" not in said[1]
    assert "holds a run already: this one starts again at step 0" in said[2]
    for text in said:
        assert "no last checkpoint" not in text and "is not empty" not in text, text


def test_resuming_against_other_features_is_refused(fit_config, capsys):
    args = ["--config", SMALL, "--config", fit_config, "--experiment", "other-features",
            "--preview_every_n_steps", "0", "--ckpt_path", "last"]
    assert fit(*args, "--trainer.max_steps", "1") == 0
    last = exp_dir(fit_config, "other-features") / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)  # as if trained on 2048-point FFTs
    checkpoint["hyper_parameters"]["feature_config"]["n_fft"] = 2048
    torch.save(checkpoint, last)
    capsys.readouterr()
    assert fit(*args, "--trainer.max_steps", "2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "n_fft: checkpoint 2048 vs data 1024" in err[0]


@pytest.mark.parametrize("option, value, says", [
    ("discriminator.last_kernel", "[5, 5]", "last_kernel '[1, 5]'"),
    # Was a 10-kB line of state-dict errors.
    ("generator.residual_channels", "64",
     "generator.residual_channels: checkpoint 128 vs model 64"),
], ids=["discriminators", "generator-size"])
def test_resuming_a_model_of_another_shape_is_one_line_naming_the_setting(
        option, value, says, fit_config, capsys):
    args = ["--config", SMALL, "--config", fit_config, "--experiment", f"other-{option}",
            "--preview_every_n_steps", "0", "--ckpt_path", "last"]
    assert fit(*args, "--trainer.max_steps", "1") == 0
    capsys.readouterr()
    assert fit(*args, "--trainer.max_steps", "2", f"--model.init_args.{option}", value) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    # Settings that leave the tensors as they are (a loss weight) resume.
    assert fit(*args, "--trainer.max_steps", "2", "--model.init_args.loss.cycle", "5") == 0
    last = exp_dir(fit_config, f"other-{option}") / "checkpoints" / "last.ckpt"
    assert 2 <= torch.load(last, weights_only=True)["global_step"] < 6  # the step it reached


def test_training_learns_to_move_both_ways_toward_the_target_and_to_discriminate(
        fit_config, prepared):
    """Short CPU training of a pair that converts spectral envelopes (the recipes' setting)
    must beat its untrained self (the identity: global residual, zero-initialised output):
    each generator lands closer to the other singer's nearest frames, on its source's
    training frames (L1 at most 85 % of the identity's; measured 77-81 %), without moving
    away on a held-out segment (at most 103 % of the identity's; measured 97-100 %: 120
    steps on 20 s per singer generalise little, and float rounding alone moves that figure
    by 3 points), and the discriminators separate real from converted crops (their
    loss falls below the 0.5 of a constant guess). (The cycle A->B->A, perfect at the
    identity, gets worse as the generators leave it, so it is no measure of learning here.)"""
    assert fit("--config", SMALL, "--config", fit_config, "--experiment", "learn",
               "--trainer.max_steps", "120", "--trainer.val_check_interval", "60",
               "--data.init_args.batch_size", "4", "--preview_every_n_steps", "0",
               "--checkpoint_every_n_steps", "120",
               "--data.init_args.spectral_envelope", "true") == 0
    out = exp_dir(fit_config, "learn")
    model = load_model(out / "checkpoints" / "last.ckpt")
    data = SingerPairData(str(prepared.out_dir), "nit_f001", "pjs", val_segments=1,
                          neighbour_k=4, spectral_envelope=True)
    data.setup("fit")
    mels = data.train_set.mels
    for generator, source, other, held_out in (
            (model.g_ab, "a", "b", data.val_set.pairs[0][0]),
            (model.g_ba, "b", "a", data.val_set.pairs[0][1])):
        held_out = torch.from_numpy(held_out)
        for frames, target, most in (
                (mels[source], mels[f"nn_{other}"], 0.85),
                (held_out, neighbour_means(held_out, mels[other], 4), 1.03)):
            with torch.no_grad():
                converted = generator(frames[None, :, : frames.shape[1] // 4 * 4])[0]
            target = target[:, : converted.shape[1]]
            untrained, learnt = ((x[:, : converted.shape[1]] - target).abs().mean().item()
                                 for x in (frames, converted))
            print(f"{source}->{other} {frames.shape[1]} frames: L1 {untrained:.3f} -> "
                  f"{learnt:.3f} ({learnt / untrained:.0%})")
            assert learnt < most * untrained, (source, untrained, learnt)
    d_fake = last_values(metrics(out), "train/d_b_fake")
    assert sum(d_fake[-10:]) / 10 < 0.25, d_fake  # LSGAN: a constant 0.5 guess scores 0.25


def test_bf16_mixed_precision_trains_and_a_cpu_without_bf16_units_is_warned_of(fit_config):
    """bf16-mixed is the GPU setting, and faster on CPUs with AMX; CPU autocast runs the same
    code path. Where the CPU has no bf16 units the run says it will be slow."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fit("--config", SMALL, "--config", fit_config, "--experiment", "bf16",
                   "--trainer.precision", "bf16-mixed", "--trainer.max_steps", "2",
                   "--preview_every_n_steps", "0") == 0
    rows = metrics(exp_dir(fit_config, "bf16"))
    assert all(math.isfinite(v) for v in last_values(rows, "train/g_loss"))
    assert all(math.isfinite(v) for v in last_values(rows, "val/mcd_cycle_a"))
    slow = [w for w in caught if "no bf16 units" in str(w.message)]
    assert len(slow) == (0 if runs_bf16_fast() else 1), [str(w.message) for w in caught]


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 only")
def test_an_x86_cpu_held_to_avx2_has_no_fast_bf16():
    """oneDNN held to AVX2 (what a CPU without AVX-512 gets) has no bf16 kernels, whatever
    the CPU itself has: training warns, and `--precision auto` renders in fp32 (bf16 would
    render ~60x slower there)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "ONEDNN_MAX_CPU_ISA": "AVX2"}
    out = subprocess.run([sys.executable, "-c", "from voiceconv.core.cpu import runs_bf16_fast, "
                          "bf16_is_fast; print(runs_bf16_fast(), bf16_is_fast('cpu'))"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_neighbour_loss_without_neighbour_targets_is_one_clear_line(fit_config, capsys):
    code = fit("--config", SMALL, "--config", fit_config, "--experiment", "no-targets",
               "--data.init_args.neighbour_k", "0")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "set data.neighbour_k" in err[0], err


def test_a_folder_that_is_not_a_prep_output_is_one_clear_line(fit_config, tmp_path, capsys):
    code = fit("--config", SMALL, "--config", fit_config, "--experiment", "not-prep",
               "--data.init_args.prep_dir", tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "is not a `voiceconv prep` output" in err[0]


def test_a_mistyped_option_or_a_broken_config_is_one_clear_line(fit_config, tmp_path, capsys):
    # jsonargparse prints about 55 lines of usage before its error; the CLI prints one.
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [\n")
    cases = ((["--config", SMALL, "--config", fit_config, "--trainer.max_stepz", "3"],
              "unrecognized arguments: --trainer.max_stepz 3"),
             (["--config", broken], "Problems parsing config"))
    for args, expected in cases:
        code = fit(*args)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert err[0].startswith("voiceconv fit: error: ") and expected in err[0], err
    # A value Lightning refuses is a user error too (it was "unexpected error", exit 1).
    code = fit("--config", SMALL, "--config", fit_config, "--experiment", "negative-steps",
               "--trainer.max_steps", "-3")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("voiceconv fit: error: `max_steps` must be")
