#!/usr/bin/env bash
# Folders for `voiceconv eval --mode nonparallel`: OUT/source/<song> -> each held-out song of
# SOURCE, and OUT/reference/<song> -> a held-out song of TARGET (another song: it stands for the
# target's voice, for speaker similarity), named alike so that eval pairs them. With TRAIN (a
# data dir of the training songs), also OUT/target_voice/ and OUT/source_voice/ -> the two
# singers' training songs, whose centroids then stand for their voices.
# Usage: local/eval_dirs.sh DATA SOURCE TARGET OUT [TRAIN]
set -euo pipefail
data=$1
source_singer=$2
target_singer=$3
out=$4
train=${5:-}
here=$(dirname "$0")
reference=$("${here}/held_out.sh" "${data}" "${target_singer}" | head -n 1)
rm -rf "${out}/source" "${out}/reference" "${out}/target_voice" "${out}/source_voice"
mkdir -p "${out}/source" "${out}/reference"
"${here}/held_out.sh" "${data}" "${source_singer}" | while read -r path; do
    name=$(basename "${path}")
    ln -s "$(realpath "${path}")" "${out}/source/${name}"
    ln -s "$(realpath "${reference}")" "${out}/reference/${name%.*}.${reference##*.}"
done
if [ -n "${train}" ]; then
    for role in target source; do
        singer=${target_singer}
        [ "${role}" = source ] && singer=${source_singer}
        mkdir -p "${out}/${role}_voice"
        "${here}/held_out.sh" "${train}" "${singer}" | while read -r path; do
            ln -s "$(realpath "${path}")" "${out}/${role}_voice/$(basename "${path}")"
        done
    done
fi
