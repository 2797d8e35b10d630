"""Run one stage over many items: cached per item, parallel, resumable, deterministic.

Each item's outcome is stored as a small record under `OUT/.records/<stage>/<key>.json`,
where the key hashes the stage name, the item and the stage's settings. The record is written
(atomically) only after the item's outputs exist under their final names, so:
- a rerun with unchanged inputs reuses every record and computes nothing;
- after `kill -9` only unfinished items are redone;
- a new or changed input computes only that input.
Outcomes are returned sorted, so the manifest does not depend on `--jobs` or timing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from voiceconv.core.errors import VoiceconvError
from voiceconv.core.fileio import dumps_row, write_text_atomic

# A stage function maps (item, settings, out_dir) to an outcome:
# {"rows": [row, ...]} for accepted work, or {"reject": "human-readable reason"}.
Outcome = dict[str, Any]
StageFunction = Callable[[dict[str, Any], Any, Path], Outcome]


@dataclass
class StageResult:
    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (item, reason)
    computed: int = 0
    reused: int = 0
    seconds: float = 0.0


def _init_worker() -> None:
    import torch

    # One process per core: threads inside a worker would only compete with its siblings.
    torch.set_num_threads(1)


class WorkerPool:
    """A lazily started process pool shared by all stages of one run (start-up is paid once)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._executor: ProcessPoolExecutor | None = None

    def map(self, fn: Callable, args: list[tuple]) -> Iterator[tuple[int, Outcome]]:
        """Yield (index, outcome) in completion order."""
        if self.jobs <= 1 or len(args) <= 1:
            for i, a in enumerate(args):
                yield i, _call(fn, a)
            return
        if self._executor is None:
            # spawn: safe with torch/OpenMP state in the parent, and the default on macOS.
            self._executor = ProcessPoolExecutor(self.jobs, mp_context=get_context("spawn"),
                                                 initializer=_init_worker)
        futures = {self._executor.submit(_call, fn, a): i for i, a in enumerate(args)}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _call(fn: StageFunction, args: tuple) -> Outcome:
    try:
        return fn(*args)
    except VoiceconvError as exc:
        return {"reject": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one bad item must not stop the stage
        # Not cached ("transient"): after a fix or a freed disk, a rerun tries again.
        return {"reject": f"unexpected error: {type(exc).__name__}: {exc}", "transient": True}


# Where the corpus lives does not change what a file is (its name in the corpus, size and
# modification time do), so a moved or copied corpus reuses its records.
UNKEYED_FIELDS = frozenset({"path"})


def item_key(stage: str, item: dict[str, Any], settings: dict[str, Any]) -> str:
    keyed = {k: v for k, v in item.items() if k not in UNKEYED_FIELDS}
    blob = dumps_row({"stage": stage, "item": keyed, "settings": settings})
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def run_stage(name: str, fn: StageFunction, items: list[dict[str, Any]], settings: Any,
              settings_dict: dict[str, Any], out_dir: Path, pool: WorkerPool,
              progress: bool = True) -> StageResult:
    start = time.perf_counter()
    records = out_dir / ".records" / name
    records.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome | None] = [None] * len(items)
    pending: list[int] = []
    keys = [item_key(name, item, settings_dict) for item in items]
    for i, key in enumerate(keys):
        record = records / f"{key}.json"
        outcome = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
        if outcome is not None and _files_exist(outcome, out_dir):
            outcomes[i] = outcome
        else:
            pending.append(i)
    # Longest first: the last items to finish are short, so no worker idles at the end.
    pending.sort(key=lambda i: -float(items[i].get("duration", 0.0)))

    bar = tqdm(total=len(pending), desc=f"{name:>8}", unit="item", disable=not progress or
               not pending, leave=True, dynamic_ncols=True, mininterval=1.0)
    for j, outcome in pool.map(fn, [(items[i], settings, out_dir) for i in pending]):
        i = pending[j]
        if not outcome.get("transient"):
            write_text_atomic(records / f"{keys[i]}.json", dumps_row(outcome))
        outcomes[i] = outcome
        bar.update()
    bar.close()

    result = StageResult(name, computed=len(pending), reused=len(items) - len(pending))
    for item, outcome in zip(items, outcomes, strict=True):
        assert outcome is not None
        if "reject" in outcome:
            result.rejects.append((item, outcome["reject"]))
        else:
            result.rows.extend(outcome["rows"])
    result.rows.sort(key=lambda row: row["id"])
    _prune_records(records, set(keys))
    result.seconds = time.perf_counter() - start
    return result


# Row fields that name files under OUT: a record is only reused while they still exist.
FILE_FIELDS = ("audio", "features")


def _files_exist(outcome: Outcome, out_dir: Path) -> bool:
    return all((out_dir / row[f]).is_file()
               for row in outcome.get("rows", ()) for f in FILE_FIELDS if f in row)


def _prune_records(records: Path, live: set[str]) -> None:
    """Forget outcomes of inputs that are gone, so the records folder tracks the corpus."""
    for record in records.glob("*.json"):
        if record.stem not in live:
            record.unlink(missing_ok=True)
