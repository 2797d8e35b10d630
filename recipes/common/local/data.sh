#!/usr/bin/env bash
# Kaldi-style data dirs <out>/{train,test}/{wav.scp,utt2spk} from a corpus, holding out songs
# for conversion and evaluation. CORPUS is either
#   a folder <corpus>/<singer>/**/<song>.{flac,wav,ogg,mp3,aiff,aif} (singer = first folder), or
#   a Kaldi-style data dir (wav.scp + utt2spk; a "song" is then an utterance id).
# A song is held out when its name (file name without extension, or utterance id) is listed.
# Each of SINGERS must be in the corpus with songs to train on and at least one held out.
# Usage: data.sh CORPUS OUT "HELD_OUT_SONG ..." ["SINGER ..."]
set -euo pipefail
corpus=$1
out=$2
held_out=${3:-}
singers=${4:-}

for split in train test; do
    mkdir -p "${out}/${split}"
    : > "${out}/${split}/.wav.scp.tmp"
    : > "${out}/${split}/.utt2spk.tmp"
done
add() {  # utt singer path song
    local split=train
    case " ${held_out} " in *" $4 "*) split=test ;; esac
    echo "$1 $3" >> "${out}/${split}/.wav.scp.tmp"
    echo "$1 $2" >> "${out}/${split}/.utt2spk.tmp"
}

if [ -f "${corpus}/wav.scp" ] && [ -f "${corpus}/utt2spk" ]; then
    while read -r utt path; do
        singer=$(awk -v u="${utt}" '$1 == u { print $2; exit }' "${corpus}/utt2spk")
        if [ -z "${singer}" ]; then
            echo "$0: error: ${utt} is in wav.scp but not in utt2spk" >&2
            exit 1
        fi
        add "${utt}" "${singer}" "${path}" "${utt}"
    done < "${corpus}/wav.scp"
elif [ -d "${corpus}" ]; then
    while IFS= read -r path; do
        relative=${path#"${corpus%/}"/}
        singer=${relative%%/*}
        song=$(basename "${path}")
        song=${song%.*}
        case "${path}" in *" "*)
            echo "$0: error: spaces in paths are not supported: ${path}" >&2; exit 1 ;;
        esac
        add "${singer}-${song}" "${singer}" "$(realpath "${path}")" "${song}"
    done < <("$(dirname "$0")/audio_files.sh" "${corpus}")
elif [ ! -e "${corpus}" ]; then
    echo "$0: error: no corpus at ${corpus}" >&2
    exit 1
else
    echo "$0: error: ${corpus} is neither a folder of <singer>/<song> files nor a Kaldi data dir" >&2
    exit 1
fi

# Every song held out is said per singer below ("every song of ... is held out").
if [ ! -s "${out}/train/.wav.scp.tmp" ] && [ ! -s "${out}/test/.wav.scp.tmp" ]; then
    echo "$0: error: no audio found in ${corpus} (expected <singer>/<song>.flac ...)" >&2
    exit 1
fi
error() {
    echo "$0: error: $*" >&2
    exit 1
}
for name in ${held_out}; do
    # Held out: the utterance id is the name, or <singer>-<name> (compared as text).
    if ! awk -v n="${name}" '$1 == n || substr($1, length($1) - length(n)) == "-" n { found = 1 }
                             END { exit !found }' "${out}/test/.wav.scp.tmp"; then
        case ${name,,} in *.flac|*.wav|*.ogg|*.mp3|*.aiff|*.aif)
            error "held-out song ${name} is not in ${corpus} (name it without its extension:" \
                "${name%.*})" ;;
        esac
        error "held-out song ${name} is not in ${corpus}"
    fi
done
# Checked here, not when a later stage needs them: before prep spends minutes on the corpus.
sings() {  # split singer: does the split's list have a song of the singer?
    awk -v s="$2" '$2 == s { found = 1 } END { exit !found }' "${out}/$1/.utt2spk.tmp"
}
for singer in ${singers}; do
    if ! sings train "${singer}" && ! sings test "${singer}"; then
        error "singer ${singer} is not in ${corpus} (singers there:" \
            "$(cat "${out}"/{train,test}/.utt2spk.tmp | cut -d' ' -f2 | LC_ALL=C sort -u | xargs))"
    fi
done
for singer in ${singers}; do
    sings test "${singer}" || error "no held-out song of ${singer}: hold out one song of each" \
        "singer (stages 5 and 6 convert and measure it)"
    sings train "${singer}" || error "every song of ${singer} is held out: leave some to" \
        "train on (a singer recorded in one file: cut it into songs first)"
done
for split in train test; do
    # Renamed only when complete: an interrupted stage never leaves a half list behind.
    mv "${out}/${split}/.wav.scp.tmp" "${out}/${split}/wav.scp"
    mv "${out}/${split}/.utt2spk.tmp" "${out}/${split}/utt2spk"
    echo "$0: ${out}/${split}: $(wc -l < "${out}/${split}/wav.scp") songs" >&2
done
