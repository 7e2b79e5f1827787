"""Fault injection for the tests: environment variables (inherited by local Ray workers) that make
chosen points fail the way real ones do, asked in one place, `injected(point)`, where a point runs.
`NAS_FAIL_TRIALS="2,5"`: those search trials raise in their worker ("trial 5"); `NAS_FAIL_CELLS=
"width=0.5,groups=3 shuffle=false@1"`: those ablation cells or cell@seed ("label@seed");
`NAS_STOP_TUNE_AT=N`: Ray Tune stops when trial N starts, as when Ray's memory monitor kills a worker."""

from __future__ import annotations

import os

# a numbered point's kind -> (the variable listing its numbers, the error it raises)
NUMBERED = {"trial": ("NAS_FAIL_TRIALS", "injected fault in trial {}"),
            "tune": ("NAS_STOP_TUNE_AT", "injected Tune stop at trial {}")}


def _words(name: str) -> list[str]:
    return [v.strip() for v in os.environ.get(name, "").split(",") if v.strip()]


def injected(point: str) -> str | None:
    """The injected error of `point` ("trial 5", "tune 5", "label@seed") if the environment names it."""
    kind, _, number = point.partition(" ")
    if kind in NUMBERED and number.isdigit():
        variable, message = NUMBERED[kind]
        return message.format(int(number)) if int(number) in {int(v) for v in _words(variable)} else None
    label, _, seed = point.rpartition("@")
    if not (label and seed.isdigit()):
        return None
    cells = set(_words("NAS_FAIL_CELLS"))
    hit = label in cells or point in cells
    return f"injected fault in cell {label} seed {seed}" if hit else None
