#!/usr/bin/env bash
# Kaldi-style data dirs for the bundled demo audio: <audio>/<singer>/*.flac ->
# <data>/{train,test}/{wav.scp,utt2spk}. One song per singer is held out for conversion.
set -euo pipefail
audio=$1
data=$2
held_out="nitech_jp_song070_f001_029 pjs020_song"

for singer in nit_f001 pjs; do
    if ! ls "${audio}/${singer}"/*.flac >/dev/null 2>&1; then
        echo "$0: error: no FLAC files in ${audio}/${singer}" >&2
        exit 1
    fi
done

for split in train test; do
    mkdir -p "${data}/${split}"
    : > "${data}/${split}/.wav.scp.tmp"
    : > "${data}/${split}/.utt2spk.tmp"
done
for path in $(ls "${audio}"/*/*.flac | LC_ALL=C sort); do
    singer=$(basename "$(dirname "${path}")")
    song=$(basename "${path}" .flac)
    split=train
    case " ${held_out} " in *" ${song} "*) split=test ;; esac
    echo "${singer}-${song} $(realpath "${path}")" >> "${data}/${split}/.wav.scp.tmp"
    echo "${singer}-${song} ${singer}" >> "${data}/${split}/.utt2spk.tmp"
done
for split in train test; do
    # Renamed only when complete: an interrupted stage never leaves a half list behind.
    mv "${data}/${split}/.wav.scp.tmp" "${data}/${split}/wav.scp"
    mv "${data}/${split}/.utt2spk.tmp" "${data}/${split}/utt2spk"
    echo "$0: ${data}/${split}: $(wc -l < "${data}/${split}/wav.scp") songs" >&2
done
