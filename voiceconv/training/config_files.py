"""The YAML files a training command is given, checked before Lightning loads (it takes
seconds), so that a mistyped path is said at once."""

from __future__ import annotations

from pathlib import Path

from voiceconv.core.errors import option_error

CONFIG_FLAGS = ("--config", "-c")


def require_config_files(argv: list[str], prog: str) -> None:
    """Refuse a `--config`/`-c` path that names no file. A value that is not a .yaml/.yml/
    .json path (jsonargparse also takes the YAML itself) is left to the parser."""
    for i, arg in enumerate(argv):
        flag, _, value = arg.partition("=")
        if flag not in CONFIG_FLAGS:
            continue
        if not value and i + 1 < len(argv):
            value = argv[i + 1]
        if value.endswith((".yaml", ".yml", ".json")) and not Path(value).exists():
            raise option_error(f"--config {value}: no such file", prog)
