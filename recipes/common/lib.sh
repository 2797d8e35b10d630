# Shared by every recipe's run.sh: option parsing, logging, stage guards.
# Usage inside run.sh, after setting defaults:  . ../common/lib.sh "$@"

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0")) $*" >&2; }

# Options every recipe takes (run.sh may override the defaults before sourcing this file):
#   --force true   rerun commands that already succeeded (see run below)
#   --ngpu N       0: train on the CPU; N > 0: on N GPUs (DDP when N > 1); unset: the
#                  trainer config decides (accelerator auto)
force=${force:-false}
ngpu=${ngpu:-}

# caller_path PATH: a relative path the user gave names something where they ran the recipe,
# which has since cd'ed into its folder: made absolute there, unless it names something in the
# recipe folder (as the recipes' own settings, e.g. the demo's audio, do).
caller_path() {
    if [[ "$1" != /* ]] && [ -n "${VOICECONV_CALLER_DIR:-}" ] && [ ! -e "$1" ] \
            && [ -e "${VOICECONV_CALLER_DIR}/$1" ]; then
        realpath "${VOICECONV_CALLER_DIR}/$1"
    else
        printf '%s\n' "$1"
    fi
}

# `--some-option value` sets $some_option, which run.sh must have defined (as Kaldi's
# parse_options.sh does), so a typo is an error instead of a silently ignored flag.
while [ $# -gt 0 ]; do
    case "$1" in
        # A run.sh has cd'ed into its folder, so a relative $0 may not resolve from here.
        --help|-h) script=$0; [ -f "${script}" ] || script=$(basename "$0")
                   sed -n '2,/^$/p' "${script}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --*)
            name=$(echo "${1#--}" | tr '-' '_')
            if [ -z "${!name+set}" ]; then
                log "error: unknown option $1"; exit 2
            fi
            if [ $# -lt 2 ]; then log "error: $1 needs a value"; exit 2; fi
            printf -v "$name" '%s' "$2"
            case " corpus prep_config singing mbrola base vocoder " in *" ${name} "*)
                printf -v "$name" '%s' "$(caller_path "$2")" ;;
            esac
            shift 2 ;;
        *) log "error: unexpected argument $1"; exit 2 ;;
    esac
done

# Stage numbers, --ngpu and --seed are whole numbers: anything else is a typo to report in one
# line, not a bash error followed by a recipe that runs nothing and says "done".
for name in stage stop_stage ngpu seed; do
    if [ -n "${!name-}" ] && ! [[ "${!name}" =~ ^[0-9]+$ ]]; then
        log "error: --${name//_/-} must be a whole number (got '${!name}')"; exit 2
    fi
done

# stage_enabled N: whether stage N lies within --stage .. --stop-stage.
stage_enabled() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }

# run CMD...: log the exact command, then run it, unless this very command (same arguments,
# same folder, same $depends) already succeeded: a marker named by its hash is written under
# .done/ only after success, so an interrupted recipe reruns exactly what did not finish, and a
# finished one does nothing. Commands that resume by themselves (prep, fit) then continue
# where they stopped. Set depends=$(stamp FILE...) for a command that reads files an earlier
# stage may change without changing this command (a model trained further): it runs again.
commands_run=0
commands_skipped=0
depends=""
run() {
    local marker
    marker=.done/$(printf '%s\0' "${PWD}" "$@" ${depends:+"${depends}"} | sha1sum | cut -c1-16)
    if [ "${force}" != true ] && [ -f "${marker}" ]; then
        log "done already: $*"
        commands_skipped=$((commands_skipped + 1))
        return 0
    fi
    log "run: $*"
    "$@"
    mkdir -p .done
    printf '%s\n' "$*" > "${marker}.tmp" && mv "${marker}.tmp" "${marker}"
    commands_run=$((commands_run + 1))
}

# stamp FILE...: the size and modification time of each FILE that exists (for depends). A
# shipped part named as voiceconv takes it (pretrained:NAME) is its file, so a newer one that
# arrives with a `git pull` counts as a changed input.
shipped_parts=${VOICECONV_PRETRAINED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/checkpoints/pretrained}
stamp() {
    local file
    for file in "$@"; do
        [[ "${file}" == pretrained:* ]] && file=${shipped_parts}/${file#pretrained:}.pt
        [ -f "${file}" ] && stat -c '%n %s %Y' "${file}"
    done
    return 0
}

# listing DIR: one line that changes when a file below DIR is added, removed or rewritten
# (for depends: a song added to a corpus).
# A folder that is missing or unreadable is left to the command that reads it to report.
listing() {
    { find -L "$1" -type f -printf '%P %s %T@\n' 2>/dev/null || true; } | LC_ALL=C sort \
        | sha1sum | cut -c1-40
}

# trainer_args: the trainer options that --ngpu asks for (none when it is unset).
trainer_args() {
    if [ -z "${ngpu}" ]; then
        return 0
    elif [ "${ngpu}" -eq 0 ]; then
        echo "--trainer.accelerator cpu --trainer.devices 1"
    elif [ "${ngpu}" -eq 1 ]; then
        echo "--trainer.accelerator gpu --trainer.devices 1"
    else
        echo "--trainer.accelerator gpu --trainer.devices ${ngpu} --trainer.strategy ddp"
    fi
}

# finish: the last line of every recipe.
finish() {
    if [ "${commands_run}" -eq 0 ] && [ "${commands_skipped}" -gt 0 ]; then
        log "nothing to do: every command of stages ${stage}..${stop_stage} already succeeded" \
            "(--force true reruns them)"
    else
        log "done (stages ${stage}..${stop_stage}: ${commands_run} run," \
            "${commands_skipped} done already)"
    fi
}

if ! command -v voiceconv >/dev/null 2>&1; then
    log "error: 'voiceconv' is not on PATH; install it first: pip install -e <repo>"
    exit 2
fi
