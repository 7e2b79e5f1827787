"""Fault injection for the tests, in one place: environment variables that make chosen points
of a campaign fail the way real ones do, so the recovery paths run for real. The job runner asks
`injected(job.point)` inside the worker (one hook, no parameter threaded through the layers);
the variables reach local Ray workers with the environment of the process that starts Ray.

- `$NAS_FAIL_TRIALS="2,5"`: those search trial numbers raise inside their worker.
- `$NAS_FAIL_CELLS="width=0.5,groups=3 shuffle=false@1"`: those ablation cells (or cell@seed)
  raise inside their worker.
- `$NAS_STOP_TUNE_AT=N`: Ray Tune itself stops when trial N starts, as when Ray's memory monitor
  kills a worker (the search driver's restart path).
"""

from __future__ import annotations

import os


def _words(name: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


def failing_trials() -> tuple[int, ...]:
    return tuple(int(v) for v in _words("NAS_FAIL_TRIALS"))


def failing_cells() -> set[str]:
    return set(_words("NAS_FAIL_CELLS"))


def tune_stop_at() -> int | None:
    raw = os.environ.get("NAS_STOP_TUNE_AT", "").strip()
    return int(raw) if raw else None


def injected(point: str) -> str | None:
    """The injected error of the campaign point `point` ("trial 5", or an ablation's "label@seed"),
    if the environment names it."""
    kind, _, number = point.partition(" ")
    if kind == "trial" and number.isdigit():
        return trial_fault(int(number))
    label, _, seed = point.rpartition("@")
    return cell_fault(label, int(seed)) if label and seed.isdigit() else None


def trial_fault(number: int) -> str | None:
    """The injected error of search trial `number`, if any."""
    return f"injected fault in trial {number}" if number in failing_trials() else None


def cell_fault(label: str, seed: int) -> str | None:
    """The injected error of ablation cell `label` at `seed`, if any."""
    faults = failing_cells()
    hit = label in faults or f"{label}@{seed}" in faults
    return f"injected fault in cell {label} seed {seed}" if hit else None
