# Shared by every recipe's run.sh: option parsing, logging, stage guards.
# Usage inside run.sh, after setting defaults:  . ../common/lib.sh "$@"

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0")) $*" >&2; }

# `--some-option value` sets $some_option, which run.sh must have defined (as Kaldi's
# parse_options.sh does), so a typo is an error instead of a silently ignored flag.
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --*)
            name=$(echo "${1#--}" | tr '-' '_')
            if [ -z "${!name+set}" ]; then
                log "error: unknown option $1"; exit 2
            fi
            if [ $# -lt 2 ]; then log "error: $1 needs a value"; exit 2; fi
            printf -v "$name" '%s' "$2"
            shift 2 ;;
        *) log "error: unexpected argument $1"; exit 2 ;;
    esac
done

# stage_enabled N: whether stage N lies within --stage .. --stop-stage.
stage_enabled() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }

# run CMD...: log the exact command, then run it.
run() { log "run: $*"; "$@"; }

if ! command -v voiceconv >/dev/null 2>&1; then
    log "error: 'voiceconv' is not on PATH; install it first: pip install -e <repo>"
    exit 2
fi
