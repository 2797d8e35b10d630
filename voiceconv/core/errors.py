"""Errors a user can act on: the CLI prints their message as one line, never a traceback."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable
from typing import NoReturn


class VoiceconvError(Exception):
    """Something about the user's input or setup is wrong; the message says what."""


class AudioDecodeError(VoiceconvError):
    """A file could not be read as audio."""


class FeatureConfigMismatch(VoiceconvError):
    """Two parts of the pipeline were built with different feature settings."""


def option_error(message: str, prog: str) -> VoiceconvError:
    """A refused option as one line with where to look: parsers print a page of usage first,
    which buries the error."""
    return VoiceconvError(f"{message} (options: {prog} --help)")


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are VoiceconvErrors: one line under `run_as_command`."""

    def error(self, message: str) -> NoReturn:
        raise option_error(message, self.prog)


def run_as_command(main: Callable[[list[str], str], int | None], argv: list[str],
                   prog: str) -> int:
    """Run a command's `main(argv, prog)` as the CLI promises: a user error is one line and
    exit code 2, an interruption says how to resume (130), anything else one line and 1."""
    try:
        return main(argv, prog) or 0
    except VoiceconvError as exc:
        print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            return unexpected(exc, prog)
        where = f" (writing {exc.filename})" if exc.filename else ""
        print(f"{prog}: error: the disk is full{where}: make room and rerun the same command; "
              "finished work is kept", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, never a traceback
        return unexpected(exc, prog)


def unexpected(exc: Exception, prog: str) -> int:
    """Anything else: one line and exit code 1, or the traceback under VOICECONV_DEBUG."""
    if os.environ.get("VOICECONV_DEBUG"):
        raise exc
    print(f"{prog}: unexpected error: {type(exc).__name__}: {one_line(str(exc))} "
          "(set VOICECONV_DEBUG=1 for a traceback)", file=sys.stderr)
    return 1


def one_line(message: str) -> str:
    """A message that may quote a library's multi-line text (YAML's, a parser's), as one line."""
    return " ".join(message.split())
