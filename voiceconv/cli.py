"""The `voiceconv` command. Each subcommand lives in its own module; this file only
dispatches and turns user-facing errors into one line and a non-zero exit code."""

from __future__ import annotations

import importlib
import os
import sys

# subcommand -> (module with main(argv, prog), one-line help)
COMMANDS = {
    "prep": ("data_prep.cli", "prepare a singing corpus: stems -> segments and features"),
    "eval": ("voiceconv.evaluate", "measure converted singing: metrics.json and report.html"),
    "fit": ("voiceconv.train", "train a model from a YAML config (resumable: --ckpt_path last)"),
    "pretrain": ("voiceconv.pretrain", "pretrain the encoder on many singers (a base for fit)"),
    "convert": ("voiceconv.convert", "convert vocal stems (files or folders) with a fitted model"),
}


def run_command(name: str, argv: list[str], prog: str | None = None) -> int:
    from voiceconv.errors import VoiceconvError

    prog = prog or f"voiceconv {name}"
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return module.main(argv, prog=prog) or 0
    except VoiceconvError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, never a traceback
        if os.environ.get("VOICECONV_DEBUG"):
            raise
        print(f"{prog}: unexpected error: {type(exc).__name__}: {exc} "
              "(set VOICECONV_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        usage = "\n".join(f"  {name:<10}{text}" for name, (_, text) in COMMANDS.items())
        print(f"usage: voiceconv COMMAND [options]\n\ncommands:\n{usage}", file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"voiceconv: error: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    return run_command(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
