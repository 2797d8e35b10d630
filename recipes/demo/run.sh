#!/usr/bin/env bash
# voiceconv demo: the bundled NIT-F001 singer (A) and PJS singer (B), CPU-sized; one song of
# each is held out and converted. Every stage and option is that of ../common/svc.sh
# (`bash run.sh --help` lists them); the defaults here finish in about 6 minutes on a
# 2-core CPU without AVX-512: the pair starts from the shipped base and fits 300 steps (as
# close to both singers as 1200 steps from a two-singer base were). Outputs go under
# recipes/demo/{data,dump}/<exp>/ and checkpoints/<exp>*/.
# PJS sings about an octave below NIT-F001, and a generator trained toward the other singer's
# frames renders that singer's harmonics: songs are converted with --key auto (into the
# target's range) and their melody measured up to that shift. The songs sung into PJS are
# rendered by the shipped singing vocoder nsf-singing-lite-v2 (89 % of its training crops are
# PJS's: it renders him closer and more naturally than WORLD), those into NIT-F001 by WORLD
# (the vocoder loses the melody on PJS's lowest notes moved up an octave).
#
#   bash recipes/demo/run.sh                                # everything, stages 0-6
#   bash recipes/demo/run.sh --stage 3 --stop-stage 3       # only (re)train the CycleGAN
#   bash recipes/demo/run.sh --vocoder world                # WORLD both ways
#   bash recipes/demo/run.sh --vocoder nsf --ngpu 1         # fine-tune NSF-HiFi-GAN on a GPU
#                                      (2000 steps, ~6 min on an H200; follows F0, so --key works)
#   bash recipes/demo/run.sh --vocoder nsf-lite             # the lite NSF-HiFi-GAN on a CPU
#                                      (4000 steps, ~1 hour on 2 cores; follows F0)
#   bash recipes/demo/run.sh --vocoder nsf-small --vocoder-steps 200000 --ngpu 1
#                                      # the small NSF-HiFi-GAN from scratch: follows F0
set -euo pipefail
export VOICECONV_CALLER_DIR=$PWD  # paths the user gives are relative to it
cd "$(dirname "$0")"
exec bash ../common/svc.sh --corpus audio --singer-a nit_f001 --singer-b pjs \
    --held-out "nitech_jp_song070_f001_029 pjs020_song" --exp demo --fit-steps 300 --key auto \
    --vocoder "a2b=pretrained:nsf-singing-lite-v2 b2a=world" "$@"
