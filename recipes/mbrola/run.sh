#!/usr/bin/env bash
# voiceconv on the synthetic parallel mbrola corpus: the objective benchmark.
# Non-parallel training (source voice on half of the training melodies, target voice on the
# other half), scored on the dev melodies, which every voice sings sample-aligned.
#
# Usage: recipes/mbrola/run.sh [--stage N] [--stop-stage M] [--corpus DIR] [--source us2]
#                              [--target us3] [--model small|paper] [--jobs N] [--exp NAME]
#                              [--fit-args "..."] [--ngpu N] [--force true]
# Stages:
#   0  data dirs: Kaldi-style train/ (disjoint melodies per voice) and dev/ (parallel)
#   1  prep: features and stats of train and dev
#   2  fit the CycleGAN (resumes from checkpoints/<exp>/checkpoints/last.ckpt if there is one)
#   3  score: MCD of converted (plainly, and matched to the target's training frames as
#      voiceconv convert --match-k 32 does) vs real target, against the source through the
#      same vocoder and the raw source; F0 of the converted vs the source

# One block, which bash reads whole before running any of it: a recipe file saved while
# the recipe runs (during a fit of hours) changes the next run, not this one.
{
set -euo pipefail
export VOICECONV_CALLER_DIR=$PWD  # paths the user gives are relative to it
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus=../../../shared/data/mbrola
source=us2
target=us3
model=small
jobs=$(nproc 2>/dev/null || echo 1)
exp=""
fit_args=""

. ../common/lib.sh "$@"

pair=${source}_${target}
exp=${exp:-mbrola_${pair}_${model}}
data=data/${pair}
dump=dump/${pair}
ckpt=../../checkpoints/${exp}/checkpoints/last.ckpt

if stage_enabled 0; then
    log "stage 0: data dirs from ${corpus} (${source} -> ${target})"
    run local/data.sh "${corpus}" "${data}" "${source}" "${target}"
fi

if stage_enabled 1; then
    for split in train dev; do
        log "stage 1: prep (${split})"
        run voiceconv prep "${data}/${split}" "${dump}/prep_${split}" --jobs "${jobs}" \
            --config conf/prep.yaml
    done
fi

if stage_enabled 2; then
    log "stage 2: fit (${model}); rerun to resume"
    # shellcheck disable=SC2086 # fit_args holds several options on purpose
    run voiceconv fit --config "../common/conf/cyclegan_${model}.yaml" --config conf/fit.yaml \
        --data.init_args.prep_dir "${dump}/prep_train" \
        --data.init_args.val_prep_dir "${dump}/prep_dev" \
        --data.init_args.singer_a "${source}" --data.init_args.singer_b "${target}" \
        --experiment "${exp}" --ckpt_path last $(trainer_args) ${fit_args}
fi

if stage_enabled 3; then
    log "stage 3: score ${ckpt} on the dev melodies"
    run python local/score_conversion.py "${ckpt}" "${corpus}" "${source}" "${target}" \
        "../../checkpoints/${exp}/score"
fi

finish
exit
}
