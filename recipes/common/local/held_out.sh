#!/usr/bin/env bash
# Paths of SINGER's songs in a Kaldi-style data dir: local/held_out.sh DATA SINGER
set -euo pipefail
data=$1
singer=$2
awk -v s="${singer}" 'NR == FNR { spk[$1] = $2; next } spk[$1] == s { $1 = ""; print substr($0, 2) }' \
    "${data}/utt2spk" "${data}/wav.scp"
