#!/usr/bin/env bash
# voiceconv demo: the bundled NIT-F001 singer (A) and PJS singer (B), CPU-sized.
#
# Usage: recipes/demo/run.sh [--stage N] [--stop-stage M] [--jobs N] [--exp NAME]
#                            [--prep-config FILE] [--model small|paper] [--pretrain-steps N]
#                            [--fit-steps N]
#                            [--vocoder world|griffin-lim|hifigan-universal|nsf]
#                            [--vocoder-steps N]
# Stages:
#   0  data dirs: Kaldi-style train/ and held-out test/ lists of the bundled songs
#   1  prep: ingest, clean, segment, features, stats (resumable; reruns skip finished work)
#   2  pretrain the encoder on the bundled singers' training songs (masked reconstruction;
#      the base is checkpoints/<exp>-base/checkpoints/last.ckpt; --pretrain-steps 0 skips it)
#   3  fit the CycleGAN, NIT-F001 (A) <-> PJS (B), from the base if there is one (resumes
#      from its last.ckpt)
#   4  vocoder: training-free WORLD by default; --vocoder nsf fine-tunes NSF-HiFi-GAN from
#      the universal HiFi-GAN (slow on a CPU: about 5 s per step)
#   5  convert the held-out songs: A's to B's voice and B's to A's
#   6  eval: F0 kept (against the source), speaker similarity to the target; report.html
# Outputs go under recipes/demo/data/, recipes/demo/dump/<exp>/ and checkpoints/<exp>/.

set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
jobs=$(nproc 2>/dev/null || echo 1)
exp=demo
prep_config=conf/prep.yaml
model=small
pretrain_steps=300
fit_steps=600
vocoder=world
vocoder_steps=400

. ../common/lib.sh "$@"

dump=dump/${exp}
exp_dir=../../checkpoints/${exp}
base=../../checkpoints/${exp}-base/checkpoints/last.ckpt

if stage_enabled 0; then
    log "stage 0: data dirs from audio/ (held-out songs go to data/test)"
    run local/data.sh audio data
fi

if stage_enabled 1; then
    log "stage 1: prep (train)"
    run voiceconv prep data/train "${dump}/prep" --jobs "${jobs}" --config "${prep_config}"
    log "features: ${dump}/prep/manifest.jsonl; rejects: ${dump}/prep/rejects.jsonl"
fi

if stage_enabled 2 && [ "${pretrain_steps}" -gt 0 ]; then
    log "stage 2: pretrain the encoder (${model}, ${pretrain_steps} steps); rerun to resume"
    run voiceconv pretrain --config "../common/conf/pretrain_${model}.yaml" \
        --config conf/pretrain.yaml --data.init_args.prep_dirs "[${dump}/prep]" \
        --experiment "${exp}-base" --trainer.max_steps "${pretrain_steps}" --ckpt_path last
fi

if stage_enabled 3; then
    init=()
    if [ "${pretrain_steps}" -gt 0 ] && [ -f "${base}" ]; then
        init=(--model.init_args.init_from "${base}")
    fi
    log "stage 3: fit (${model}, ${fit_steps} steps, ${init[1]:-from scratch}); rerun to resume"
    run voiceconv fit --config "../common/conf/cyclegan_${model}.yaml" --config conf/fit.yaml \
        --data.init_args.prep_dir "${dump}/prep" --experiment "${exp}" \
        --trainer.max_steps "${fit_steps}" --ckpt_path last "${init[@]}"
fi

vocoder_choice=${vocoder}
if [ "${vocoder}" = nsf ]; then
    vocoder_choice=../../checkpoints/${exp}-vocoder/checkpoints/last.ckpt
fi
if stage_enabled 4; then
    if [ "${vocoder}" = nsf ]; then
        log "stage 4: fine-tune NSF-HiFi-GAN (${vocoder_steps} steps); rerun to resume"
        run voiceconv fit --config ../common/conf/nsf_hifigan_v1.yaml --config conf/vocoder.yaml \
            --data.init_args.prep_dir "${dump}/prep" --experiment "${exp}-vocoder" \
            --trainer.max_steps "${vocoder_steps}" --ckpt_path last
    else
        log "stage 4: vocoder ${vocoder} (no training)"
    fi
fi

if stage_enabled 5; then
    log "stage 5: convert the held-out songs with ${vocoder_choice}"
    for direction in a2b b2a; do
        singer=nit_f001
        [ "${direction}" = b2a ] && singer=pjs
        # shellcheck disable=SC2046 # one argument per held-out song
        run voiceconv convert $(local/held_out.sh data/test "${singer}") \
            --model "${exp_dir}/checkpoints/last.ckpt" --direction "${direction}" \
            --vocoder "${vocoder_choice}" --out "${exp_dir}/converted/${direction}"
    done
fi

if stage_enabled 6; then
    for direction in a2b b2a; do
        source_singer=nit_f001 target_singer=pjs
        [ "${direction}" = b2a ] && source_singer=pjs target_singer=nit_f001
        log "stage 6: eval ${direction} (${source_singer} -> ${target_singer})"
        run local/eval_dirs.sh data/test "${source_singer}" "${target_singer}" \
            "${exp_dir}/eval/${direction}"
        run voiceconv eval --converted "${exp_dir}/converted/${direction}" \
            --source "${exp_dir}/eval/${direction}/source" \
            --reference "${exp_dir}/eval/${direction}/reference" \
            --mode nonparallel --out "${exp_dir}/eval/${direction}"
    done
    where=$(cd "${exp_dir}" && pwd)
    log "converted songs: ${where}/converted/{a2b,b2a}/"
    log "reports: ${where}/eval/a2b/report.html and ${where}/eval/b2a/report.html"
fi

log "done (stages ${stage}..${stop_stage})"
