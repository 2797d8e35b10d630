#!/usr/bin/env bash
# Folders for `voiceconv eval --mode nonparallel`: OUT/source/<song> -> each held-out song of
# SOURCE, and OUT/reference/<song> -> a held-out song of TARGET (another song: it stands for the
# target's voice, for speaker similarity), named alike so that eval pairs them.
# Usage: local/eval_dirs.sh DATA SOURCE TARGET OUT
set -euo pipefail
data=$1
source_singer=$2
target_singer=$3
out=$4
reference=$("$(dirname "$0")/held_out.sh" "${data}" "${target_singer}" | head -n 1)
rm -rf "${out}/source" "${out}/reference"
mkdir -p "${out}/source" "${out}/reference"
"$(dirname "$0")/held_out.sh" "${data}" "${source_singer}" | while read -r path; do
    name=$(basename "${path}")
    ln -s "$(realpath "${path}")" "${out}/source/${name}"
    ln -s "$(realpath "${reference}")" "${out}/reference/${name%.*}.${reference##*.}"
done
