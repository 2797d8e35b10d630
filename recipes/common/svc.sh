#!/usr/bin/env bash
# The singing-voice-conversion recipe every corpus recipe runs (as ESPnet's run.sh calls its
# task script): a recipe's run.sh cds into its folder (conf/ and outputs live there) and calls
#   ../common/svc.sh --corpus DIR --singer-a A --singer-b B --held-out "SONG ..." [options]
#
# Options: [--stage N] [--stop-stage M] [--exp NAME] [--jobs N] [--ngpu N] [--force true]
#          [--prep-config FILE] [--model small|paper] [--base auto|corpus|none|CKPT]
#          [--pretrain-steps N]
#          [--fit-steps N] [--seed N]
#          [--vocoder world|griffin-lim|hifigan-universal|nsf|nsf-lite|nsf-small|pretrained:NAME|CKPT]
#          [--vocoder "a2b=NAME b2a=NAME"]
#          [--vocoder-steps N] [--key SEMITONES|auto] [--pretrain-args "..."] [--fit-args "..."]
#          [--vocoder-args "..."] [--copy-synthesis true] [--match-k K]
# --*-args pass options through to that stage's command (e.g. --fit-args
# "--model.init_args.loss.cycle 5"). Every command is logged as it runs, and one that already
# succeeded is skipped: a rerun of a finished recipe does nothing and says so, an interrupted
# one reruns what did not finish (prep and training resume where they stopped);
# --force true reruns everything in the stage range. --seed N trains stages 2 and 3 from
# seed N instead of the configs' 0 (weights, masks, crops): for repeats that tell a real
# change from seed-to-seed noise; give each seed its own --exp, as a fit resumes its
# experiment's last checkpoint.
# Stages:
#   0  data dirs: Kaldi-style train/ and held-out test/ lists of the corpus (data/<exp>/;
#      one per experiment, so pairs from several corpora share a recipe folder)
#   1  prep: ingest, clean, segment, features, stats (dump/<exp>/prep; resumable)
#   2  with --base corpus: pretrain the encoder on the corpus's singers (masked
#      reconstruction, --pretrain-steps; the base is checkpoints/<exp>-base/checkpoints/
#      last.ckpt). The default, --base auto, is the base that ships for the model size
#      (pretrained:singing-base-<model>, trained on a pool of 10 singers and voices; see
#      checkpoints/pretrained/) and skips this stage, as does --base none (from scratch)
#      or a base made elsewhere (--base CKPT, e.g. from recipes/pretrain/)
#   3  fit the CycleGAN A <-> B, from the base if there is one (resumes from its last.ckpt)
#   4  vocoder: training-free WORLD by default; --vocoder nsf fine-tunes NSF-HiFi-GAN from
#      the universal HiFi-GAN on the corpus (with --ngpu: 2000 steps of 16 crops, follows F0;
#      on a CPU: 400 steps of 2, about 1.5 s each, and its pitch still comes from the mel, so
#      no --key with it); --vocoder nsf-lite fine-tunes the lite one (V1 widths, kernel-3
#      stacks only; 4000 steps of 4, about 1 s each on a 2-core CPU; follows F0 from step 500);
#      --vocoder nsf-small trains the small NSF-HiFi-GAN from scratch (about 0.8 s per step
#      on a 2-core CPU; follows F0)
#      A shipped vocoder (--vocoder pretrained:nsf-singing-lite) or a checkpoint is used as
#      it is: no training. --vocoder "a2b=NAME b2a=NAME" renders each direction with its own
#      (a direction left out: world)
#   5  convert the held-out songs: A's to B's voice and B's to A's (checkpoints/<exp>/converted),
#      shifted by --key (auto: into the target singer's range; needs a vocoder that follows
#      F0, such as world); with --match-k K, their frames matched to the target's training
#      frames (voiceconv convert --match-k; default 0: off); with --copy-synthesis true, also
#      the held-out songs themselves through the same vocoder at key 0
#      (converted/{a2b,b2a}_copy): the vocoder's own mark
#   6  eval: F0 kept (against the source, moved by the key if there is one), speaker
#      similarity to each singer (the centroid of its training songs), naturalness (DNSMOS);
#      checkpoints/<exp>/eval/*/report.html (and of the copy synthesis, if made)

# One block, which bash reads whole before running any of it: a recipe file saved while
# the recipe runs (during a fit of hours) changes the next run, not this one.
{
set -euo pipefail
common=$(cd "$(dirname "$0")" && pwd)

stage=0
stop_stage=100
corpus=""
singer_a=""
singer_b=""
held_out=""
jobs=$(nproc 2>/dev/null || echo 1)
exp=svc
prep_config=conf/prep.yaml
model=small
pretrain_steps=200
base=auto
fit_steps=600
seed=""  # "": the configs' seeds
vocoder=world
vocoder_steps=""  # default: nsf 400 (CPU) or 2000 (--ngpu), nsf-lite 4000, nsf-small 6000
key=0
pretrain_args=""
fit_args=""
vocoder_args=""
copy_synthesis=false
match_k=0

. "${common}/lib.sh" "$@"

for required in corpus singer_a singer_b held_out; do
    if [ -z "${!required}" ]; then
        log "error: --${required//_/-} is required"
        exit 2
    fi
done
data=data/${exp}
seed_args=()
if [ -n "${seed}" ]; then
    seed_args=(--seed_everything "${seed}" --model.init_args.seed "${seed}"
               --data.init_args.seed "${seed}")
fi
dump=dump/${exp}
exp_dir=../../checkpoints/${exp}
own_base=../../checkpoints/${exp}-base/checkpoints/last.ckpt
case ${base} in
    auto) base=pretrained:singing-base-${model}
          python3 -c "import sys; from voiceconv.core.pretrained import shipped
sys.exit('${base#pretrained:}' not in shipped())" 2>/dev/null || base=corpus ;;
esac
case ${base} in
    corpus) base=${own_base}; [ "${pretrain_steps}" -gt 0 ] || base="" ;;
    none) base="" ;;
esac

if stage_enabled 0; then
    log "stage 0: data dirs from ${corpus} (held-out songs go to ${data}/test)"
    depends=$(listing "${corpus}")  # songs added to the corpus are listed on a rerun
    run "${common}/local/data.sh" "${corpus}" "${data}" "${held_out}" "${singer_a} ${singer_b}"
    depends=""
fi

if stage_enabled 1; then
    log "stage 1: prep (train)"
    # A corpus that changed, or an edited prep config, is prepared again (prep reuses what it
    # has done with the same settings).
    depends=$(stamp "${data}/train/wav.scp" "${prep_config}")
    run voiceconv prep "${data}/train" "${dump}/prep" --jobs "${jobs}" --config "${prep_config}"
    depends=""
    log "features: ${dump}/prep/manifest.jsonl; rejects: ${dump}/prep/rejects.jsonl"
fi

if stage_enabled 2; then
    if [ "${base}" = "${own_base}" ]; then
        log "stage 2: pretrain the encoder (${model}, ${pretrain_steps} steps); rerun to resume"
        # shellcheck disable=SC2046,SC2086 # option lists split into words on purpose
        run voiceconv pretrain --config "../common/conf/pretrain_${model}.yaml" \
            --config conf/pretrain.yaml --data.init_args.prep_dirs "[${dump}/prep]" \
            --experiment "${exp}-base" --trainer.max_steps "${pretrain_steps}" --ckpt_path last \
            "${seed_args[@]}" $(trainer_args) ${pretrain_args}
    else
        log "stage 2: nothing to pretrain (base: ${base:-none})"
    fi
fi

if stage_enabled 3; then
    init=()
    if [ -n "${base}" ]; then
        init=(--model.init_args.init_from "${base}")
    fi
    log "stage 3: fit ${singer_a} <-> ${singer_b} (${model}, ${fit_steps} steps," \
        "${init[1]:-from scratch}); rerun to resume"
    # shellcheck disable=SC2046,SC2086 # option lists split into words on purpose
    run voiceconv fit --config "../common/conf/cyclegan_${model}.yaml" --config conf/fit.yaml \
        --data.init_args.prep_dir "${dump}/prep" --data.init_args.singer_a "${singer_a}" \
        --data.init_args.singer_b "${singer_b}" --experiment "${exp}" \
        --trainer.max_steps "${fit_steps}" --ckpt_path last "${init[@]}" "${seed_args[@]}" \
        $(trainer_args) ${fit_args}
fi

# --vocoder NAME renders both directions; "a2b=NAME b2a=NAME" gives each its own (a vocoder
# trained mostly on one singer renders that voice best; an unnamed direction gets world).
vocoder_a2b=${vocoder} vocoder_b2a=${vocoder}
if [[ "${vocoder}" == *=* ]]; then
    vocoder_a2b=world vocoder_b2a=world
    for part in ${vocoder}; do
        case ${part} in
            a2b=?*) vocoder_a2b=$(caller_path "${part#a2b=}") ;;
            b2a=?*) vocoder_b2a=$(caller_path "${part#b2a=}") ;;
            *) log "error: --vocoder takes NAME or \"a2b=NAME b2a=NAME\" (got '${part}')"
               exit 2 ;;
        esac
    done
fi

# vocoder_training NAME: for a vocoder this recipe trains, sets its experiment (train_exp),
# configs (train_conf) and steps (train_steps); fails for one that is used as it is.
vocoder_training() {
    case $1 in
        # Fine-tuned from the universal HiFi-GAN. On GPUs: batches of 16 with half the crops
        # pitch-shifted, so the source takes over the pitch (2000 steps, about 6 minutes on an
        # H200); on a CPU, the demo's batches of 2 (better sound, but the pitch stays the mel's).
        nsf) train_exp=${exp}-vocoder
             train_conf=(--config ../common/conf/nsf_hifigan_v1.yaml --config conf/vocoder.yaml)
             if [ "${ngpu:-0}" -gt 0 ]; then
                 train_steps=${vocoder_steps:-2000}
                 train_conf+=(--data.init_args.batch_size 16 --data.init_args.pitch_shift_prob 0.5
                              --data.init_args.num_workers 4 --checkpoint_every_n_steps 500)
             else
                 train_steps=${vocoder_steps:-400}
             fi ;;
        # The universal filter cut to its kernel-3 stacks: the cut breaks its sound, and while it
        # is rebuilt around the source (half the crops pitch-shifted) the pitch moves to the F0.
        nsf-lite) train_exp=${exp}-vocoder-lite; train_steps=${vocoder_steps:-4000}
             train_conf=(--config ../common/conf/nsf_hifigan_lite.yaml --config conf/vocoder.yaml
                         --data.init_args.batch_size 4 --data.init_args.pitch_shift_prob 0.5) ;;
        # From scratch: larger batches, and a quarter of the crops pitch-shifted so the filter
        # takes its pitch from the F0 (what a key shift needs).
        nsf-small) train_exp=${exp}-vocoder-small; train_steps=${vocoder_steps:-6000}
             train_conf=(--config ../common/conf/nsf_hifigan_small.yaml --config conf/vocoder.yaml
                         --data.init_args.batch_size 4 --data.init_args.pitch_shift_prob 0.25) ;;
        *) return 1 ;;
    esac
}

# vocoder_of DIRECTION: what `voiceconv convert --vocoder` takes for that direction.
vocoder_of() {
    local name=vocoder_$1
    if vocoder_training "${!name}"; then
        echo "../../checkpoints/${train_exp}/checkpoints/last.ckpt"
    else
        printf '%s\n' "${!name}"
    fi
}

if stage_enabled 4; then
    names=("${vocoder_a2b}")
    [ "${vocoder_b2a}" != "${vocoder_a2b}" ] && names+=("${vocoder_b2a}")
    for name in "${names[@]}"; do
        if vocoder_training "${name}"; then
            log "stage 4: train ${name} (${train_steps} steps); rerun to resume"
            # shellcheck disable=SC2046,SC2086 # option lists split into words on purpose
            run voiceconv fit "${train_conf[@]}" --data.init_args.prep_dir "${dump}/prep" \
                --experiment "${train_exp}" --trainer.max_steps "${train_steps}" \
                --ckpt_path last $(trainer_args) ${vocoder_args}
        else
            log "stage 4: vocoder ${name} (no training)"
        fi
    done
fi

# The conversions and their scores follow the model and the vocoder: trained further, they are
# made again.
if stage_enabled 5; then
    kinds=("")  # "": the conversions; "_copy": the songs themselves through the vocoder
    [ "${copy_synthesis}" = true ] && kinds+=(_copy)
    for direction in a2b b2a; do
        singer=${singer_a}
        [ "${direction}" = b2a ] && singer=${singer_b}
        choice=$(vocoder_of "${direction}")
        depends=$(stamp "${exp_dir}/checkpoints/last.ckpt" "${choice}")
        log "stage 5: convert the held-out songs ${direction} with ${choice}"
        for kind in "${kinds[@]}"; do
            how=(--key "${key}")
            [ "${match_k}" != 0 ] && how+=(--match-k "${match_k}")
            [ -n "${kind}" ] && how=(--copy-synthesis)
            # shellcheck disable=SC2046 # one argument per held-out song
            run voiceconv convert $("${common}/local/held_out.sh" "${data}/test" "${singer}") \
                --model "${exp_dir}/checkpoints/last.ckpt" --direction "${direction}" \
                --vocoder "${choice}" "${how[@]}" \
                --out "${exp_dir}/converted/${direction}${kind}"
        done
    done
fi

if stage_enabled 6; then
    for direction in a2b b2a; do
        source_singer=${singer_a} target_singer=${singer_b}
        [ "${direction}" = b2a ] && source_singer=${singer_b} target_singer=${singer_a}
        log "stage 6: eval ${direction} (${source_singer} -> ${target_singer})"
        depends=$(stamp "${exp_dir}/checkpoints/last.ckpt" "$(vocoder_of "${direction}")")
        dirs=${exp_dir}/eval/${direction}
        run "${common}/local/eval_dirs.sh" "${data}/test" "${source_singer}" "${target_singer}" \
            "${dirs}" "${data}/train"
        for kind in "" _copy; do
            # The copy synthesis is evaluated where stage 5 made one; it is at key 0.
            [ -n "${kind}" ] && [ ! -d "${exp_dir}/converted/${direction}${kind}" ] && continue
            transposed=()
            [ "${key}" != 0 ] && [ -z "${kind}" ] && transposed=(--transposed)
            run voiceconv eval --converted "${exp_dir}/converted/${direction}${kind}" \
                --source "${dirs}/source" --reference "${dirs}/reference" \
                --target-voice "${dirs}/target_voice" --source-voice "${dirs}/source_voice" \
                --mode nonparallel "${transposed[@]}" --out "${dirs}${kind}"
        done
    done
    where=$(cd "${exp_dir}" && pwd)
    log "converted songs: ${where}/converted/{a2b,b2a}/"
    log "reports: ${where}/eval/a2b/report.html and ${where}/eval/b2a/report.html"
fi

finish
exit
}
