"""The loop for points that are plain Ray tasks (an ablation's cells, a benchmark's runs): a bounded
number in flight, results handed on as they arrive, a dead worker FAILED, the rest cancelled on Ctrl-C."""

from __future__ import annotations

from typing import Any, Callable, Iterable, TypeVar

import ray

from nas.job import JobResult, one_line
from nas.status import Status

Point = TypeVar("Point")


def run_tasks(points: Iterable[Point], submit: Callable[[Point], Any], concurrency: int,
              on_done: Callable[[Point, JobResult], None],
              more: Callable[[], bool] = lambda: True) -> None:
    """`submit(point)` starts its Ray task (returns the ObjectRef), at most `concurrency` at once,
    while `more()` holds (a time limit); `on_done(point, result)` gets each JobResult as it ends."""
    queue, pending = list(points), {}
    try:
        while pending or (queue and more()):
            while queue and len(pending) < concurrency and more():
                point = queue.pop(0)
                pending[submit(point)] = point
            ready, _ = ray.wait(list(pending), num_returns=1)
            point = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except Exception as err:  # noqa: BLE001 - the worker process died (twice): record it, go on
                result = JobResult(Status.FAILED, error="worker lost: " + one_line(err))
            on_done(point, result)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
