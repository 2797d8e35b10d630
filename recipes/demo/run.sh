#!/usr/bin/env bash
# voiceconv demo: the bundled NIT-F001 singer (A) and PJS singer (B), CPU-sized.
#
# Usage: recipes/demo/run.sh [--stage N] [--stop-stage M] [--jobs N] [--exp NAME]
#                            [--prep-config FILE]
# Stages:
#   0  data dirs: Kaldi-style train/ and held-out test/ lists of the bundled songs
#   1  prep: ingest, clean, segment, features, stats (resumable; reruns skip finished work)
# Outputs go under recipes/demo/data/ and recipes/demo/dump/<exp>/.

set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
jobs=$(nproc 2>/dev/null || echo 1)
exp=demo
prep_config=conf/prep.yaml

. ../common/lib.sh "$@"

dump=dump/${exp}

if stage_enabled 0; then
    log "stage 0: data dirs from audio/ (held-out songs go to data/test)"
    run local/data.sh audio data
fi

if stage_enabled 1; then
    log "stage 1: prep (train)"
    run voiceconv prep data/train "${dump}/prep" --jobs "${jobs}" --config "${prep_config}"
    log "features: ${dump}/prep/manifest.jsonl; rejects: ${dump}/prep/rejects.jsonl"
fi

log "done (stages ${stage}..${stop_stage})"
