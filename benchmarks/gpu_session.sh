#!/usr/bin/env bash
# What a lent GPU is for, as one call of the device tool within its 10 minutes. First, here:
# `bash benchmarks/gpu_prepare.sh`; then the device tool's run with
#   command: bash benchmarks/gpu_session.sh    carry: [".gpu"]    timeout_s: 600
# 1. Training throughput of the `paper` config (benchmarks/train_step.py): the reference
#    MaskCycleGAN-VC at batch 1 in fp32 and bf16, then voiceconv at batch 1 and 128 in fp32,
#    bf16 and bf16 + torch.compile (issue 27).
# 2. The singing vocoder (issue 28): recipes/pretrain/run.sh's stage 4 (the lite NSF-HiFi-GAN
#    on the pool's real singers), fine-tuned from the shipped snapshot (its 7307 CPU steps) at
#    lr 1e-4, batch 32, bf16, until the time left is spent; its generator (fp32) and
#    discriminator (fp16) come back in shards under 16 MB.
# 3. Beside 2, bf16 against fp32 over a short run: the `paper` config fitted FIT_STEPS (default
#    300) steps on the demo singers in each precision, same seed and data; a table of the losses
#    over the last quarter of the run, and both metrics.csv in runs.tar.gz.
# Everything lands in $OUT (the device tool brings it back; /tmp/gpu_session/out elsewhere),
# with the log. GPU_SESSION_SMOKE=1 runs it at toy sizes, on any machine, to check the script.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
work=/tmp/gpu_session
out=${OUT:-$work/out}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
python=${PYTHON:-python3}
if ! "$python" -c "import jsonargparse, librosa, pyworld, soundfile" 2>/dev/null; then
    if [ ! -d .gpu/wheels ]; then
        echo "gpu_session.sh: packages missing: run benchmarks/gpu_prepare.sh, carry .gpu"
        exit 2
    fi
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$work/site" .gpu/wheels/*.whl
    export PYTHONPATH="$work/site"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# Both modes fine-tune the singing vocoder from the newest shipped generator (in git):
# nothing else to start from travels.
snapshot=(--model.init_args.init_from pretrained:nsf-singing-lite-v2)
if [ "${GPU_SESSION_SMOKE:-0}" = 1 ]; then
    batches=(1); steps=1; fit_steps=30; fit_batch=2; model=small; budget=${BUDGET:-420}
    vocoder_args=("${snapshot[@]}" --data.init_args.batch_size 2 --data.init_args.num_workers 2
                  --trainer.val_check_interval 10 --data.init_args.singers "[vocadito]")
    singers=(.gpu/singing/vocadito)
else
    batches=(1 128); steps=10; fit_steps=${FIT_STEPS:-300}; fit_batch=16; model=paper
    budget=${BUDGET:-560}
    # bf16: the CPU run's validation kept improving after its switch to bf16 (journal 12-06)
    # From v2 at lr 1e-4: on the CPU, v2's own run (from the first snapshot) took validation
    # mel L1 from 0.486 to 0.461 in 2000 steps and 0.442 in 10 000 (its card).
    vocoder_args=(--data.init_args.batch_size 32 --data.init_args.num_workers 8
                  --trainer.val_check_interval 500 --trainer.precision bf16-mixed
                  "${snapshot[@]}" --model.init_args.optimizer.lr 0.0001)
    singers=(.gpu/singing/* recipes/demo/audio/nit_f001 recipes/demo/audio/pjs)
fi
# At least 100 s, so that the vocoder reaches its first checkpoint even when the rest ran long.
seconds_left() { local left=$(( start + budget - $(date +%s) )); echo $(( left > 100 ? left : 100 )); }
"$python" -c "import torch; print('torch', torch.__version__, '| GPU:',
              torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"

echo "== the data: the demo singers (the CycleGAN) and the pool's real singing (the vocoder)"
"$python" -m voiceconv.cli prep recipes/demo/audio "$work/prep" --jobs "$(nproc)" \
    --config recipes/demo/conf/prep.yaml --quiet
rm -rf "$work/singing"
for singer in "${singers[@]}"; do
    mkdir -p "$work/singing/$(basename "$singer")"
    for song in "$singer"/*.flac; do
        case $(basename "$song") in  # held out as in gpu_vocoder_inputs.py
            nitech_jp_song070_f001_029.flac|pjs020_song.flac) continue ;;
        esac
        cp "$song" "$work/singing/$(basename "$singer")/"
    done
done
"$python" -m voiceconv.cli prep "$work/singing" "$work/vocoder-prep" --jobs "$(nproc)" \
    --config recipes/pretrain/conf/prep.yaml --quiet
echo "data ready after $(( $(date +%s) - start )) s"

echo "== 1. training throughput, paper config"
reference=(--no-reference)
[ -f .gpu/reference/maskcyclegan_vc/model.py ] &&
    reference=(--reference .gpu/reference/maskcyclegan_vc/model.py)
timeout 200 "$python" benchmarks/train_step.py --configs paper --prep "$work/prep" \
    --repeats 1 --paper-batch-size "${batches[@]}" --paper-steps "$steps" --compile \
    "${reference[@]}" | tee "$out/train_step.md" || echo "train_step.py stopped: $?"

echo "== 2. the singing vocoder, for the $(( $(seconds_left) - 40 )) s left (SIGTERM saves it)"
vocoder_exp="$work/exp/singing-vocoder-lite"
timeout -s TERM $(( $(seconds_left) - 40 )) "$python" -m voiceconv.cli fit \
    --config recipes/common/conf/nsf_hifigan_lite.yaml --config recipes/pretrain/conf/vocoder.yaml \
    --data.init_args.prep_dir "$work/vocoder-prep" --experiments_root "$work/exp" \
    --trainer.enable_progress_bar false --wandb false "${vocoder_args[@]}" 2>&1 |
    sed -u 's/^/[vocoder] /' &
vocoder=$!

echo "== 3. bf16 against fp32: $fit_steps steps of the $model config each, beside the vocoder"
for precision in 32-true bf16-mixed; do
    begun=$(date +%s)
    timeout 150 "$python" -m voiceconv.cli fit --config "recipes/common/conf/cyclegan_$model.yaml" \
        --config recipes/demo/conf/fit.yaml --data.init_args.prep_dir "$work/prep" \
        --data.init_args.batch_size "$fit_batch" --trainer.max_steps "$fit_steps" \
        --trainer.precision "$precision" --trainer.enable_progress_bar false \
        --experiment "fit-$precision" --experiments_root "$work/exp" --wandb false ||
        echo "fit $precision stopped: $?"
    echo "$precision: $(( $(date +%s) - begun )) s"
done
"$python" - "$work/exp" <<'PY' || true
import csv, statistics, sys
from pathlib import Path

exp = Path(sys.argv[1])
runs = {p: list(csv.DictReader((exp / f"fit-{p}" / "metrics.csv").open()))
        for p in ("32-true", "bf16-mixed")}
last = max(int(r["step"]) for r in runs["32-true"])
keys = ["train/g_loss", "train/d_loss", "train/g_adversarial", "train/g_cycle",
        "train/g_identity", "val/mcd_cycle_a", "val/mcd_mean_envelope"]
print(f"mean over the logged values of the last quarter (steps > {3 * last // 4}); "
      "the spread is the standard deviation of those values")
print("| metric | fp32 | bf16 |\n|---|---|---|")
for key in keys:
    cells = []
    for rows in runs.values():
        values = [float(r[key]) for r in rows if r.get(key) and int(r["step"]) > 3 * last // 4]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}" if values else "-")
    print(f"| {key} | {cells[0]} | {cells[1]} |")
PY

wait "$vocoder" || true
echo "== the vocoder's weights, after $(( $(date +%s) - start )) s"
"$python" - "$vocoder_exp/checkpoints/last.ckpt" "$out" <<'PY' || echo "no vocoder to export"
import sys
from pathlib import Path

import torch

checkpoint = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
out, state = Path(sys.argv[2]), checkpoint["state_dict"]
print("vocoder at step", checkpoint["global_step"])
# The device tool brings back files under 16 MB (8 at most): the generator in fp32 (it
# ships), the discriminator in fp16 (a start for fine-tuning, not shipped), in shards.
parts = {"generator": ({k: v for k, v in state.items() if not k.startswith("discriminator.")},
                       10e6),
         "discriminator": ({k: v.half() for k, v in state.items()
                            if k.startswith("discriminator.")}, 14e6)}
for name, (tensors, most) in parts.items():
    shards, size = [{}], 0
    for key in sorted(tensors):
        nbytes = tensors[key].numel() * tensors[key].element_size()
        if shards[-1] and size + nbytes > most:
            shards.append({})
            size = 0
        shards[-1][key] = tensors[key]
        size += nbytes
    for i, shard in enumerate(shards):
        saved = {"state_dict": shard}
        if name == "generator" and i == 0:
            saved |= {k: checkpoint[k] for k in ("hyper_parameters", "global_step", "epoch")}
        path = out / f"vocoder-{name}-{i}.pt"
        torch.save(saved, path)
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")
PY
tar -czf "$out/runs.tar.gz" -C "$work/exp" --wildcards --no-anchored 'metrics.csv' \
    'hparams.yaml' 'config.yaml' 2>/dev/null || true
echo "done after $(( $(date +%s) - start )) s"
