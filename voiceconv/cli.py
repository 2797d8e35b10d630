"""The `voiceconv` command. Each subcommand is a stage with its own `main(argv, prog)`; this
file only dispatches (importing a stage only when it runs, so `--help` stays instant)."""

from __future__ import annotations

import difflib
import importlib
import sys

from voiceconv import __version__
from voiceconv.core.errors import run_as_command

# subcommand -> (module with main(argv, prog), one-line help)
COMMANDS = {
    "prep": ("data_prep.cli", "prepare a singing corpus: stems -> segments and features"),
    "pretrain": ("voiceconv.pretrain.command",
                 "pretrain the encoder on many singers (a base for fit)"),
    "fit": ("voiceconv.fit.command",
            "train a model from a YAML config (resumable: --ckpt_path last)"),
    "convert": ("voiceconv.convert.command",
                "convert vocal stems (files or folders) with a fitted model"),
    "eval": ("voiceconv.eval.command", "measure converted singing: metrics.json and report.html"),
}


def run_command(name: str, argv: list[str], prog: str | None = None) -> int:
    def main(args: list[str], prog: str) -> int | None:
        return importlib.import_module(COMMANDS[name][0]).main(args, prog=prog)

    return run_as_command(main, argv, prog or f"voiceconv {name}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return run_command(argv[0], argv[1:])
    if argv and argv[0] == "--version":
        print(f"voiceconv {__version__}")
        return 0
    usage = "\n".join(f"  {name:<10}{text}" for name, (_, text) in COMMANDS.items())
    usage = f"usage: voiceconv COMMAND [options]   (voiceconv COMMAND --help for its own)\n\n" \
            f"commands:\n{usage}"
    if argv and argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
    hint = (f"did you mean {close[0]}? " if close else "") + f"commands: {', '.join(COMMANDS)}"
    print(f"voiceconv: error: unknown command {argv[0]!r} ({hint})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
