"""Run the prep stages in order over a corpus; every stage reads and writes a manifest.

OUT/
  manifest.jsonl          one row per segment (the features stage's manifest)
  rejects.jsonl           one row per rejected input: source, singer, stage, reason
  feature_config.json     the FeatureConfig of the features
  prep_config.json        every prep setting of the run
  stats.json              per-singer statistics
  stages/<stage>.jsonl    the manifests of ingest, clean and segment (+ their rejects)
  audio/{ingest,clean}/   mono audio at the feature rate; features/<singer>/<id>.npz
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_prep import MANIFESTS, STAGES, clean, features, ingest, segment
from data_prep.config import PrepConfig
from data_prep.corpus import discover, reject_row
from data_prep.inputs import check_prep_inputs, require_manifest
from data_prep.prepared import FEATURE_CONFIG
from data_prep.runner import StageResult, WorkerPool, run_stage
from data_prep.stats import write_stats
from voiceconv.core.features import require_f0_method
from voiceconv.core.fileio import (
    read_jsonl,
    remove_stale_temporaries,
    write_jsonl,
    write_text_atomic,
)

# stage -> (function over one item, settings that key its cache); each writes MANIFESTS[stage]
_PER_ITEM = {
    "ingest": (ingest.ingest_file, ingest.settings),
    "clean": (clean.clean_file, clean.settings),
    "segment": (segment.segment_file, segment.settings),
    "features": (features.featurize_segment, features.settings),
}


@dataclass
class PrepReport:
    out_dir: Path
    stages: list[StageResult] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # of the last stage run
    rejects: list[dict[str, Any]] = field(default_factory=list)  # all stages, this OUT
    input_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def stats_written(self) -> bool:
        return any(s.name == "stats" and s.computed for s in self.stages)


def run_prep(corpus: str | Path | None, out_dir: str | Path, config: PrepConfig | None = None,
             stages: tuple[str, ...] = STAGES, jobs: int = 1,
             progress: bool = True) -> PrepReport:
    start = time.perf_counter()
    config = config or PrepConfig()
    if "features" in stages:
        require_f0_method(config.features)
    out_dir = Path(out_dir)
    check_prep_inputs(corpus, out_dir, stages)
    remove_stale_temporaries(out_dir)
    write_text_atomic(out_dir / "prep_config.json",
                      json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    config.features.save(out_dir / FEATURE_CONFIG)
    report = PrepReport(out_dir)

    with WorkerPool(jobs) as pool:
        for stage in (s for s in STAGES if s in stages):
            if stage == "stats":
                report.stages.append(_run_stats(out_dir))
                continue
            fn, stage_settings = _PER_ITEM[stage]
            extra_rejects: list[dict[str, Any]] = []
            if stage == "ingest":
                items, extra_rejects = discover(corpus, skip=out_dir)
            else:
                items = _read_manifest(out_dir, STAGES[STAGES.index(stage) - 1])
            result = run_stage(stage, fn, items, config, stage_settings(config), out_dir, pool,
                               progress)
            if stage == "ingest":
                extra_rejects += _drop_duplicates(result)
            rejects = extra_rejects + [reject_row(item["source"], item["singer"], stage, why)
                                       for item, why in result.rejects]
            write_jsonl(out_dir / MANIFESTS[stage], result.rows)
            write_jsonl(out_dir / f"stages/{stage}.rejects.jsonl",
                        sorted(rejects, key=lambda r: (r["source"], r["reason"])))
            report.stages.append(result)
            report.rows = result.rows

    report.rejects = _collect_rejects(out_dir)
    write_jsonl(out_dir / "rejects.jsonl", report.rejects)
    ingested = out_dir / MANIFESTS["ingest"]
    if ingested.is_file():
        report.input_seconds = sum(row["duration"] for row in read_jsonl(ingested))
    report.seconds = time.perf_counter() - start
    return report


def _run_stats(out_dir: Path) -> StageResult:
    began = time.perf_counter()
    written = write_stats(out_dir / "manifest.jsonl", out_dir, _read_manifest(out_dir, "features"))
    return StageResult("stats", computed=int(written), reused=int(not written),
                       seconds=time.perf_counter() - began)


def _read_manifest(out_dir: Path, stage: str) -> list[dict[str, Any]]:
    return read_jsonl(require_manifest(out_dir, stage))


def _drop_duplicates(result: StageResult) -> list[dict[str, Any]]:
    """Keep the first of files with identical content; reject the copies."""
    first: dict[str, str] = {}
    kept, rejects = [], []
    for row in sorted(result.rows, key=lambda r: r["source"]):
        if row["hash"] in first:
            rejects.append(reject_row(row["source"], row["singer"], "ingest",
                                      f"duplicate of {first[row['hash']]} (same content)"))
        else:
            first[row["hash"]] = row["source"]
            kept.append(row)
    result.rows = sorted(kept, key=lambda r: r["id"])
    return rejects


def _collect_rejects(out_dir: Path) -> list[dict[str, Any]]:
    rejects = []
    for stage in _PER_ITEM:
        path = out_dir / f"stages/{stage}.rejects.jsonl"
        if path.is_file():
            rejects += read_jsonl(path)
    return rejects


def reason_kind(reason: str) -> str:
    """The reason without its particulars, for counting: 'near-silent (-75 LUFS...)' ->
    'near-silent'."""
    return reason.split(" (", 1)[0].split(":", 1)[0]


def format_summary(report: PrepReport) -> str:
    lines = [f"{'stage':<9}{'computed':>9}{'reused':>8}{'rejected':>9}{'seconds':>9}"]
    for s in report.stages:
        lines.append(f"{s.name:<9}{s.computed:>9}{s.reused:>8}{len(s.rejects):>9}"
                     f"{s.seconds:>9.1f}")
    manifest = report.out_dir / "manifest.jsonl"
    if manifest.is_file():
        per_singer: dict[str, list[dict[str, Any]]] = {}
        for row in read_jsonl(manifest):
            per_singer.setdefault(row["singer"], []).append(row)
        lines += ["", f"{'singer':<20}{'files':>6}{'segments':>9}{'hours':>9}"]
        for singer, rows in sorted(per_singer.items()):
            files = len({r["source"] for r in rows})
            hours = sum(r["duration"] for r in rows) / 3600
            lines.append(f"{singer:<20}{files:>6}{len(rows):>9}{hours:>9.3f}")
    if report.rejects:
        lines += ["", "rejected inputs by reason (details in rejects.jsonl):"]
        for kind, n in sorted(Counter(reason_kind(r["reason"]) for r in report.rejects).items()):
            lines.append(f"  {n:>4}  {kind}")
    if not any(s.computed for s in report.stages):
        lines += ["", f"nothing to do: every stage was up to date; output in {report.out_dir}"]
    else:
        speed = report.input_seconds / report.seconds
        lines += ["", f"{report.input_seconds / 60:.1f} min of audio in {report.seconds:.1f} s "
                      f"({speed:.1f}x real time); output in {report.out_dir}"]
    return "\n".join(lines)
