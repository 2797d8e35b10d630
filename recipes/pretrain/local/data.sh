#!/usr/bin/env bash
# One Kaldi-style data dir for the pretraining pool:
#   every <singing>/<singer>/**/<song>.{flac,wav,ogg,mp3,aiff,aif} (singer = first folder),
#   except the held-out songs, and
#   every voice of an mbrola-style corpus on its training melodies only (<mbrola>/train/<voice>/),
#   as singer mbrola_<voice>. The dev melodies and the held-out songs are where pairs are
#   evaluated, so the base never sees them.
# Usage: local/data.sh SINGING_DIR MBROLA_DIR OUT_DIR "HELD_OUT_SONGS"
set -euo pipefail
singing=$1
mbrola=$2
out=$3
held_out=$4

mkdir -p "${out}"
: > "${out}/.wav.scp.tmp"
: > "${out}/.utt2spk.tmp"
add() {  # singer path
    local id song
    song=$(basename "$2")
    id="$1-${song%.*}"
    echo "${id} $(realpath "$2")" >> "${out}/.wav.scp.tmp"
    echo "${id} $1" >> "${out}/.utt2spk.tmp"
}
if [ -d "${singing}" ]; then
    while IFS= read -r path; do
        case "${path}" in *" "*)
            echo "$0: error: spaces in paths are not supported: ${path}" >&2; exit 1 ;;
        esac
        song=$(basename "${path}")
        case " ${held_out} " in *" ${song%.*} "*) continue ;; esac
        relative=${path#"${singing%/}"/}
        add "${relative%%/*}" "${path}"
    done < <("$(dirname "$0")/../../common/local/audio_files.sh" "${singing}")
else
    echo "$0: no singing folder ${singing}; skipped" >&2
fi
if [ -d "${mbrola}/train" ]; then
    for path in $(ls "${mbrola}"/train/*/*.flac | LC_ALL=C sort); do
        add "mbrola_$(basename "$(dirname "${path}")")" "${path}"
    done
else
    echo "$0: no mbrola corpus at ${mbrola}; skipped" >&2
fi
if [ ! -s "${out}/.wav.scp.tmp" ]; then
    echo "$0: error: no audio found in ${singing} or ${mbrola}/train" >&2
    exit 1
fi
# Renamed only when complete: an interrupted stage never leaves a half list behind.
mv "${out}/.wav.scp.tmp" "${out}/wav.scp"
mv "${out}/.utt2spk.tmp" "${out}/utt2spk"
echo "$0: ${out}: $(wc -l < "${out}/wav.scp") files of $(cut -d' ' -f2 "${out}/utt2spk" | sort -u | wc -l) singers" >&2
