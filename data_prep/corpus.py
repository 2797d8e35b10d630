"""Find the audio of a corpus: a `<corpus>/<singer>/**/<file>` folder or a Kaldi data dir.

Discovery reads no audio; it lists candidates with their size and modification time, which
key the ingest stage's cache, and rejects what cannot be a usable file up front.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any

from voiceconv.core.audio import AUDIO_EXTENSIONS, why_not_a_file
from voiceconv.core.errors import VoiceconvError


def slug(text: str) -> str:
    """ASCII name safe in any file system: 'Ünïcode song (1)' -> 'Unicode_song_1'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._") or "x"


def discover(corpus: str | os.PathLike, skip: str | os.PathLike | None = None
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (items, rejects). An item: source (as written in manifests), path, singer, stat.
    `skip`: a folder inside the corpus that is not searched (prep's own output)."""
    corpus = require_corpus_folder(corpus)
    if (corpus / "wav.scp").is_file():
        candidates, rejects = _kaldi_candidates(corpus)
    else:
        candidates, rejects = _folder_candidates(corpus, skip)
    items = []
    for source, path, singer in candidates:
        if reason := why_not_a_file(path):
            rejects.append(reject_row(source, singer, "discover", reason))
            continue
        stat = path.stat()
        items.append({"source": source, "path": str(path.resolve()), "singer": singer,
                      "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    items.sort(key=lambda item: item["source"])
    return items, rejects


def require_corpus_folder(corpus: str | os.PathLike) -> Path:
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise VoiceconvError(f"corpus folder not found: {corpus}")
    return corpus


def reject_row(source: str, singer: str | None, stage: str, reason: str) -> dict[str, Any]:
    return {"source": source, "singer": singer, "stage": stage, "reason": reason}


def _is_audio_name(name: str) -> bool:
    return name.lower().endswith(AUDIO_EXTENSIONS)


def _folder_candidates(corpus: Path, skip: str | os.PathLike | None = None
                       ) -> tuple[list[tuple[str, Path, str]], list[dict]]:
    candidates, rejects = [], []
    # Symlinked singer folders are common (one corpus assembled from several); follow them,
    # but never twice into the same real folder, so a link cycle cannot loop forever. The
    # skipped folder counts as seen already.
    seen: set[str] = {os.path.realpath(skip)} if skip is not None else set()
    for root, dirs, files in os.walk(corpus, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs.sort()
        # A directory named like audio is a candidate too (and rejected as such).
        for name in sorted(files + [d for d in dirs if _is_audio_name(d)]):
            if not _is_audio_name(name):
                continue
            path = Path(root) / name
            source = path.relative_to(corpus).as_posix()
            if "/" not in source:
                rejects.append(reject_row(source, None, "discover",
                                          "not inside a singer folder (<corpus>/<singer>/...)"))
                continue
            candidates.append((source, path, source.split("/", 1)[0]))
    return candidates, rejects


def _kaldi_candidates(data_dir: Path) -> tuple[list[tuple[str, Path, str]], list[dict]]:
    """wav.scp (`utt path`) and utt2spk (`utt singer`); relative paths are tried from the
    current directory (Kaldi's convention) and then from the data dir."""
    utt2spk = _read_kaldi_table(data_dir / "utt2spk") if (data_dir / "utt2spk").is_file() else {}
    if not utt2spk:
        raise VoiceconvError(f"Kaldi data dir {data_dir} has wav.scp but no usable utt2spk")
    candidates, rejects = [], []
    for utt, location in _read_kaldi_table(data_dir / "wav.scp").items():
        singer = utt2spk.get(utt)
        if location.endswith("|"):
            rejects.append(reject_row(utt, singer, "discover",
                                      "piped wav.scp commands are not supported; give a path"))
        elif singer is None:
            rejects.append(reject_row(utt, None, "discover", "utterance missing from utt2spk"))
        else:
            path = Path(location)
            if not path.is_absolute() and not path.exists():
                path = data_dir / path
            candidates.append((utt, path, singer))
    return candidates, rejects


def _read_kaldi_table(path: Path) -> dict[str, str]:
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            key, _, value = line.strip().partition(" ")
            table[key] = value.strip()
    return table
