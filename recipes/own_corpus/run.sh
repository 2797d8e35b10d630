#!/usr/bin/env bash
# Your own singers: convert singer A into singer B and back. See README.md here.
#
#   bash recipes/own_corpus/run.sh --corpus /data/stems --singer-a alice --singer-b bob \
#       --held-out "alice_song3 bob_song7" [--exp alice_bob] [any option of ../common/svc.sh]
#
# --corpus is a folder <corpus>/<singer>/**/<song>.{flac,wav,...} or a Kaldi data dir
# (wav.scp + utt2spk); --held-out names songs (file names without extension, or utterance
# ids) kept out of training, converted in stage 5 and measured in stage 6; hold out at least
# one song of each singer. `bash recipes/own_corpus/run.sh --help` lists every option.
set -euo pipefail
export VOICECONV_CALLER_DIR=$PWD  # paths the user gives are relative to it
cd "$(dirname "$0")"
exec bash ../common/svc.sh --exp own "$@"
