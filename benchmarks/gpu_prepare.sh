#!/usr/bin/env bash
# Here, before a lent GPU machine is started: what benchmarks/gpu_session.sh needs there, in
# .gpu/ (git-ignored through .git/info/exclude), for the device tool's run to carry.
# - .gpu/wheels/: the packages voiceconv's training needs that the GPU machines' image lacks
#   (Python 3.12 there; torch, lightning, numpy, scipy, matplotlib and the like are installed),
#   at this checkout's venv's versions, the ones the tests pass with;
# - .gpu/reference/: the reference MaskCycleGAN-VC model (MIT) for train_step.py's reference
#   rows: ../shared does not travel;
# - .gpu/singing/: the songs the singing vocoder is fine-tuned on that the repository lacks
#   (benchmarks/gpu_vocoder_inputs.py), as many as the 64 MiB below leaves room for.
# The device tool refuses a working tree (the files git does not ignore, and what it carries)
# over 64 MiB: the script says what will travel, and fails when that is too much.
#
#   bash benchmarks/gpu_prepare.sh      # then run: bash benchmarks/gpu_session.sh, carry .gpu
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh clone may have no .git/info/ (and a worktree keeps its exclude elsewhere).
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
pip=".venv/bin/pip"
[ -x "$pip" ] || { echo "gpu_prepare.sh: no .venv here: install the project first" >&2; exit 2; }
packages=(jsonargparse docstring-parser typeshed-client librosa audioread soxr soundfile cffi
          pycparser pyworld-prebuilt pooch platformdirs decorator)
pinned=()
for name in "${packages[@]}"; do
    version=$("$pip" show "$name" 2>/dev/null | awk '/^Version:/ {print $2}')
    [ -n "$version" ] || { echo "gpu_prepare.sh: $name is not in .venv" >&2; exit 2; }
    pinned+=("$name==$version")
done
mkdir -p .gpu/wheels .gpu/reference
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .gpu/wheels "${pinned[@]}" \
    2> >(grep -v '^WARNING: Location' >&2)
reference=../shared/reference/maskcyclegan_vc
if [ -f "$reference/model.py" ]; then
    cp -r "$reference" .gpu/reference/
else
    echo "gpu_prepare.sh: no $reference: the session runs without reference rows" >&2
fi
rm -rf .gpu/site .gpu/singing  # site: the universal HiFi-GAN weights of older versions
tracked=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s |
          awk '{ n += $1 } END { print n }')
# The vocoder's songs get what the limit leaves, less 1 MiB for directory entries and slack.
budget=$(( (64 << 20) - tracked - $(du -sb .gpu | cut -f1) - (1 << 20) ))
"${pip%pip}python" benchmarks/gpu_vocoder_inputs.py --budget-bytes "$budget"
carried=$(du -sb .gpu | cut -f1)
echo "travels: $(( (tracked + carried) >> 20 )) MiB (the checkout $(( tracked >> 20 )), .gpu" \
    "$(( carried >> 20 ))) of the device tool's 64"
if (( tracked + carried > 64 << 20 )); then
    echo "gpu_prepare.sh: too much to travel: the device tool would refuse the run" >&2
    exit 1
fi
