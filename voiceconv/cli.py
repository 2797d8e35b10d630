"""The `voiceconv` command. Each subcommand is a stage with its own `main(argv, prog)`; this
file only dispatches (importing a stage only when it runs, so `--help` stays instant)."""

from __future__ import annotations

import importlib
import sys

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
