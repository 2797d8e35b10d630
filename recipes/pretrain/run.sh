#!/usr/bin/env bash
# Pretrain the generator's encoder on a pool of singers: the base every pair fine-tunes from
# (`voiceconv fit ... --model.init_args.init_from <base>`). Here the pool is every real singer
# in ../shared/data/singing (minus the held-out evaluation songs) and the six mbrola voices on
# their training melodies; at scale, point --singing at a large `<corpus>/<singer>/` folder.
#
# Usage: recipes/pretrain/run.sh [--stage N] [--stop-stage M] [--singing DIR] [--mbrola DIR]
#                                [--held-out "SONG ..."] [--model small|paper] [--steps N]
#                                [--jobs N] [--exp NAME] [--pool NAME] [--pretrain-args "..."]
#                                [--ngpu N] [--force true] [--vocoder-steps N] [--vocoder-args "..."]
# --pool names the pool's folders (data/<pool>, dump/<pool>; default: pool), which every --exp
# and --model that trains on the same --singing, --mbrola and --held-out shares (it is
# prepared once). A pool of other singers needs a name of its own: reusing one stops with an
# error instead of training an experiment on singers it did not start with.
# Stages:
#   0  data dir: one Kaldi-style list of the whole pool (data/<pool>)
#   1  prep: features and per-singer stats of the pool (resumable)
#   2  pretrain (resumes from checkpoints/<exp>/checkpoints/last.ckpt if there is one); the
#      base is that last.ckpt
#   3  export it as the shipped base checkpoints/pretrained/singing-base-<model>.pt (the
#      generator alone; `init_from: pretrained:singing-base-<model>`); its card beside it
#      (singing-base-<model>.md) is written by hand from the run's figures
#   4  the singing vocoder, with --vocoder-steps N (default 0: skipped; it is a long run): the
#      lite NSF-HiFi-GAN fine-tuned from the universal HiFi-GAN on the pool's real singers
#      (conf/vocoder.yaml; resumes like stage 2); the vocoder is
#      checkpoints/singing-vocoder-lite/checkpoints/last.ckpt (`--vocoder` takes its path)
#   5  with --vocoder-steps: export it as checkpoints/pretrained/nsf-singing-lite.pt (the
#      generator alone; `--vocoder pretrained:nsf-singing-lite`); its card is written by hand
# On a cluster: recipes/slurm/pretrain.sbatch runs stage 2 with requeue on pre-emption.

# One block, which bash reads whole before running any of it: a recipe file saved while
# the recipe runs (during a fit of hours) changes the next run, not this one.
{
set -euo pipefail
export VOICECONV_CALLER_DIR=$PWD  # paths the user gives are relative to it
cd "$(dirname "$0")"

stage=0
stop_stage=100
singing=../../../shared/data/singing
mbrola=../../../shared/data/mbrola
# The songs the demo and the benchmarks evaluate conversions on: never in the base.
held_out="nitech_jp_song070_f001_029 pjs020_song"
model=small
steps=6000  # the shipped base: about 50 minutes on a 2-core CPU without AVX-512
jobs=$(nproc 2>/dev/null || echo 1)
exp=""
pool=pool
pretrain_args=""
vocoder_steps=0
vocoder_args=""
default_singing=${singing}

. ../common/lib.sh "$@"

# A singing corpus given on the command line must be there: a mistyped one would leave a pool
# of the mbrola voices alone. The default (../shared's) may be missing: a clone of its own has
# none. (A missing --mbrola is a pool without those voices.)
if [ "${singing}" != "${default_singing}" ] && [ ! -d "${singing}" ]; then
    log "error: --singing ${singing}: no such folder"; exit 2
fi

exp=${exp:-pretrain_pool_${model}}
data=data/${pool}
dump=dump/${pool}
# What the pool is made of, kept beside its list; singers added inside the same folders are
# still the same pool (stage 0 lists them again).
sources="singing=$(realpath -m "${singing}") mbrola=$(realpath -m "${mbrola}") held-out=${held_out}"
if [ -f "${data}/sources" ] && [ "$(cat "${data}/sources")" != "${sources}" ]; then
    log "error: ${data} is the pool of $(cat "${data}/sources"); give this one another --pool NAME"
    exit 2
fi

if stage_enabled 0; then
    log "stage 0: pool data dir from ${singing} and ${mbrola}/train"
    depends="$(listing "${singing}") $(listing "${mbrola}")"  # singers added to the pool
    run local/data.sh "${singing}" "${mbrola}" "${data}" "${held_out}"
    depends=""
    printf '%s\n' "${sources}" > "${data}/sources"
fi

if stage_enabled 1; then
    log "stage 1: prep the pool"
    depends=$(stamp "${data}/wav.scp" conf/prep.yaml)
    run voiceconv prep "${data}" "${dump}/prep" --jobs "${jobs}" --config conf/prep.yaml
    depends=""
fi

if stage_enabled 2; then
    log "stage 2: pretrain (${model}, ${steps} steps); rerun to resume"
    # shellcheck disable=SC2086 # pretrain_args holds several options on purpose
    run voiceconv pretrain --config "../common/conf/pretrain_${model}.yaml" \
        --config conf/pretrain.yaml --data.init_args.prep_dirs "[${dump}/prep]" \
        --experiment "${exp}" --trainer.max_steps "${steps}" --ckpt_path last $(trainer_args) \
        ${pretrain_args}
    log "base checkpoint: $(cd ../../checkpoints/${exp}/checkpoints && pwd)/last.ckpt"
fi

if stage_enabled 3; then
    shipped=../../checkpoints/pretrained/singing-base-${model}.pt
    log "stage 3: export the base to ${shipped}"
    # Not through `run`: cheap, and a longer run (more --steps) must be exported again.
    python -m voiceconv.pretrain.export "../../checkpoints/${exp}/checkpoints/last.ckpt" \
        "${shipped}"
fi

if stage_enabled 4; then
    if [ "${vocoder_steps}" -gt 0 ]; then
        log "stage 4: the singing vocoder (${vocoder_steps} steps); rerun to resume"
        # shellcheck disable=SC2086 # vocoder_args holds several options on purpose
        run voiceconv fit --config ../common/conf/nsf_hifigan_lite.yaml --config conf/vocoder.yaml \
            --data.init_args.prep_dir "${dump}/prep" --trainer.max_steps "${vocoder_steps}" \
            --ckpt_path last $(trainer_args) ${vocoder_args}
    else
        log "stage 4: skipped: the singing vocoder is a long run of its own (--vocoder-steps N)"
    fi
fi

if stage_enabled 5 && [ "${vocoder_steps}" -gt 0 ]; then
    shipped=../../checkpoints/pretrained/nsf-singing-lite.pt
    log "stage 5: export the singing vocoder to ${shipped}"
    python -m voiceconv.vocoder.export \
        ../../checkpoints/singing-vocoder-lite/checkpoints/last.ckpt "${shipped}"
fi

finish
exit
}
