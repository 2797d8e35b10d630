"""Atomic file writes and JSON-lines manifests.

Every file the pipeline produces appears under its final name only when complete: it is
written to a hidden temporary name in the same directory, flushed, then renamed (rename is
atomic within one file system). A killed process leaves at most a temporary file, which
`remove_stale_temporaries` sweeps on the next run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from voiceconv.core.errors import VoiceconvError

TEMP_MARKER = ".tmp-"
# Less free space than this after a failed write: the disk is what is wrong.
DISK_FULL_BYTES = 64 << 20
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `final`; rename it to `final` if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}{TEMP_MARKER}", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def dumps_row(row: dict[str, Any]) -> str:
    """One canonical JSON line: sorted keys, UTF-8, so equal rows give equal bytes."""
    return json.dumps(row, sort_keys=True, ensure_ascii=False, allow_nan=False)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(dumps_row(r) + "\n" for r in rows))


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def remove_stale_temporaries(directory: str | os.PathLike) -> int:
    """Delete temporaries left by a killed run under `directory`; return how many."""
    removed = 0
    root = Path(directory)
    if not root.is_dir():
        return 0
    for path in root.rglob(f".*{TEMP_MARKER}*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def require_writable(folder: Path) -> None:
    """Create `folder` and prove it takes a file, before any work goes into it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".voiceconv-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise VoiceconvError(f"cannot write to {folder}: {exc.strerror or exc}") from None


def full_disk(folder: Path, exc: BaseException) -> str | None:
    """"the disk is full (N MB free)" when that is why a write into `folder` failed, else None.
    torch's writer reports a full disk as an opaque stream error ("unexpected pos ..."), so
    the free space is what tells."""
    free = shutil.disk_usage(folder).free
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or free < DISK_FULL_BYTES:
        return f"the disk is full ({free / 1e6:.0f} MB free)"
    return None
