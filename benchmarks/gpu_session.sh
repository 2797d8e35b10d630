#!/usr/bin/env bash
# What issue 27 asks of a GPU, as one call of the device tool, within its 10 minutes. First,
# here: `bash benchmarks/gpu_prepare.sh`; then the device tool's run with
#   command: bash benchmarks/gpu_session.sh    carry: [".gpu"]    timeout_s: 600
# 1. Training throughput of the `paper` config (benchmarks/train_step.py): voiceconv at batch
#    1, 32 and 128 in fp32, bf16 and bf16 + torch.compile, beside the reference MaskCycleGAN-VC
#    at batch 1 in fp32 and bf16.
# 2. bf16 against fp32 over a short run: the `paper` config fitted FIT_STEPS (default 300)
#    steps on the demo singers in each precision, same seed and data; both metrics.csv and a
#    table of the losses over the last quarter of the run.
# Everything lands in $OUT (the device tool brings it back; /tmp/gpu_session/out elsewhere),
# with the log. GPU_SESSION_SMOKE=1 runs it at toy sizes, on any machine, to check the script.
set -euo pipefail
cd "$(dirname "$0")/.."
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
if [ "${GPU_SESSION_SMOKE:-0}" = 1 ]; then
    batches=(1 2); steps=3; fit_steps=30; fit_batch=2; model=small
else
    batches=(1 32 128); steps=10; fit_steps=${FIT_STEPS:-300}; fit_batch=16; model=paper
fi
"$python" -c "import torch; print('torch', torch.__version__, '| GPU:',
              torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"

echo "== the demo singers' prep (both parts train on it)"
"$python" -m voiceconv.cli prep recipes/demo/audio "$work/prep" --jobs "$(nproc)" \
    --config recipes/demo/conf/prep.yaml --quiet

echo "== 1. training throughput, paper config"
reference=(--no-reference)
[ -f .gpu/reference/maskcyclegan_vc/model.py ] &&
    reference=(--reference .gpu/reference/maskcyclegan_vc/model.py)
"$python" benchmarks/train_step.py --configs paper --prep "$work/prep" --repeats 1 \
    --paper-batch-size "${batches[@]}" --paper-steps "$steps" --compile "${reference[@]}" \
    | tee "$out/train_step.md"

echo "== 2. bf16 against fp32: $fit_steps steps of the $model config each"
for precision in 32-true bf16-mixed; do
    start=$(date +%s)
    "$python" -m voiceconv.cli fit --config "recipes/common/conf/cyclegan_$model.yaml" \
        --config recipes/demo/conf/fit.yaml --data.init_args.prep_dir "$work/prep" \
        --data.init_args.batch_size "$fit_batch" --trainer.max_steps "$fit_steps" \
        --trainer.precision "$precision" --trainer.enable_progress_bar false \
        --experiment "fit-$precision" --experiments_root "$work/exp" --wandb false
    echo "$precision: $(( $(date +%s) - start )) s"
    cp "$work/exp/fit-$precision/metrics.csv" "$out/metrics-$precision.csv"
done
"$python" - "$out" <<'PY' | tee "$out/bf16_vs_fp32.md"
import csv, statistics, sys
from pathlib import Path

out = Path(sys.argv[1])
runs = {p: list(csv.DictReader((out / f"metrics-{p}.csv").open()))
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
