"""What prep can check before it imports its pipeline (torch, librosa: seconds), so that a
missing corpus, an unwritable output or a stage run out of order is refused at once."""

from __future__ import annotations

import os
from pathlib import Path

from data_prep import MANIFESTS, STAGES
from data_prep.corpus import require_corpus_folder
from voiceconv.core.errors import VoiceconvError
from voiceconv.core.fileio import require_writable


def check_prep_inputs(corpus: str | os.PathLike | None, out_dir: str | os.PathLike,
                      stages: tuple[str, ...]) -> None:
    """Raise VoiceconvError for the first thing that would stop `stages` before any work:
    the corpus (for ingest), the output folder, or the manifest the first stage reads."""
    out_dir = Path(out_dir)
    first = next((s for s in STAGES if s in stages), None)
    if first == "ingest":
        if corpus is None:
            raise VoiceconvError("the ingest stage needs a corpus folder")
        require_corpus_folder(corpus)
    if corpus is not None and Path(corpus).resolve() == out_dir.resolve():
        raise VoiceconvError(f"the output folder is the corpus itself ({out_dir}): prep "
                             "writes audio there; choose another")
    require_writable(out_dir)
    if first not in (None, "ingest"):
        require_manifest(out_dir, STAGES[STAGES.index(first) - 1])


def require_manifest(out_dir: Path, stage: str) -> Path:
    """The manifest `stage` wrote under `out_dir`, or an error naming the stage to run."""
    path = out_dir / MANIFESTS[stage]
    if not path.is_file():
        raise VoiceconvError(f"{path} not found: run the {stage} stage first")
    return path
