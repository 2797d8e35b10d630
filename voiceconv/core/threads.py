"""Independent pieces of work (chunks of a song, files to measure) in worker threads.

Worth it where the work releases the GIL: numpy, pyworld's C code, soundfile.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_order(fn: Callable[[T], R], items: list[T], workers: int) -> Iterator[R]:
    """fn over items in up to `workers` threads, results in order; no more than `workers`
    items are worked on or waiting ahead of the caller, so memory stays bounded however many
    items there are."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: collections.deque[Future[R]] = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) == workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def concurrently(*calls: Callable[[], R]) -> list[R]:
    """Each call in a thread of its own, all at once; their results in order."""
    return list(in_order(lambda call: call(), list(calls), len(calls)))
