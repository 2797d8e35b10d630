#!/usr/bin/env bash
# Kaldi-style data dirs for a non-parallel pair from an mbrola-style corpus
# (<corpus>/{train,dev}/<voice>/*.flac, sample-aligned across voices):
#   <data>/train: the source voice on the first half of the training melodies and the
#                 target voice on the other half, so no melody is seen by both (non-parallel);
#   <data>/dev:   both voices on every dev melody (parallel: ground truth for MCD).
set -euo pipefail
corpus=$1
data=$2
source_voice=$3
target_voice=$4

for split in train dev; do
    for voice in "${source_voice}" "${target_voice}"; do
        if ! ls "${corpus}/${split}/${voice}"/*.flac >/dev/null 2>&1; then
            echo "$0: error: no FLAC files in ${corpus}/${split}/${voice}" >&2
            exit 1
        fi
    done
done

melodies=($(ls "${corpus}/train/${source_voice}"/*.flac | LC_ALL=C sort | xargs -n1 basename))
half=$(( ${#melodies[@]} / 2 ))

write_list() {  # split voice file...
    local split=$1 voice=$2
    shift 2
    for name in "$@"; do
        echo "${voice}-${name%.flac} $(realpath "${corpus}/${split}/${voice}/${name}")" >> "${data}/${split}/.wav.scp.tmp"
        echo "${voice}-${name%.flac} ${voice}" >> "${data}/${split}/.utt2spk.tmp"
    done
}

for split in train dev; do
    mkdir -p "${data}/${split}"
    : > "${data}/${split}/.wav.scp.tmp"
    : > "${data}/${split}/.utt2spk.tmp"
done
write_list train "${source_voice}" "${melodies[@]:0:${half}}"
write_list train "${target_voice}" "${melodies[@]:${half}}"
dev=($(ls "${corpus}/dev/${source_voice}"/*.flac | LC_ALL=C sort | xargs -n1 basename))
write_list dev "${source_voice}" "${dev[@]}"
write_list dev "${target_voice}" "${dev[@]}"
for split in train dev; do
    # Renamed only when complete: an interrupted stage never leaves a half list behind.
    mv "${data}/${split}/.wav.scp.tmp" "${data}/${split}/wav.scp"
    mv "${data}/${split}/.utt2spk.tmp" "${data}/${split}/utt2spk"
    echo "$0: ${data}/${split}: $(wc -l < "${data}/${split}/wav.scp") files" >&2
done
