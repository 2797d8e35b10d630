#!/usr/bin/env bash
# The songs of a corpus <corpus>/<singer>/**/<song>.<ext>, one path a line, sorted: every
# format the recipes take (what libsndfile reads), in any depth of folders below the singer's.
# Usage: audio_files.sh CORPUS
set -euo pipefail
find -L "$1" -mindepth 2 -type f \
    \( -iname '*.flac' -o -iname '*.wav' -o -iname '*.ogg' -o -iname '*.mp3' \
       -o -iname '*.aiff' -o -iname '*.aif' \) | LC_ALL=C sort
