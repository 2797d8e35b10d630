#!/usr/bin/env bash
# voiceconv demo: the bundled NIT-F001 singer (A) and PJS singer (B), CPU-sized; one song of
# each is held out and converted. Every stage and option is that of ../common/svc.sh
# (`bash run.sh --help` lists them); the defaults here finish in about 16 minutes on a 2-core
# CPU. Outputs go under recipes/demo/{data,dump/<exp>}/ and checkpoints/<exp>*/.
#
#   bash recipes/demo/run.sh                                # everything, stages 0-6
#   bash recipes/demo/run.sh --stage 3 --stop-stage 3       # only (re)train the CycleGAN
#   bash recipes/demo/run.sh --vocoder nsf --ngpu 1         # fine-tune NSF-HiFi-GAN on a GPU
set -euo pipefail
cd "$(dirname "$0")"
exec bash ../common/svc.sh --corpus audio --singer-a nit_f001 --singer-b pjs \
    --held-out "nitech_jp_song070_f001_029 pjs020_song" --exp demo "$@"
