"""Search budgets: how much data, how many epochs and which ASHA rungs a trial gets.

A budget is a named fidelity so results are comparable: a front found at `cpu` says so in
MLflow (`budget` param) and its trials all saw the same data and epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.errors import NasError


@dataclass(frozen=True)
class Budget:
    name: str
    train_subset: int | None  # training images per trial (None: the whole training split)
    val_size: int  # validation images carved from the training set (selection only)
    epochs: int  # full fidelity; ASHA stops weak trials earlier
    batch_size: int
    grace_epochs: int  # ASHA: every trial gets at least this many epochs
    reduction_factor: int  # ASHA: keep the top 1/rf at each rung
    default_max_macs: float | None  # over-budget architectures are rejected before training
    summary: str


BUDGETS: dict[str, Budget] = {
    "smoke": Budget("smoke", 256, 128, 2, 64, 1, 2, None,
                    "seconds per trial: plumbing checks and CI"),
    "cpu": Budget("cpu", 3000, 500, 4, 128, 1, 2, 25e6,
                  "about 30 min for 50 ShuffleNet trials on 2 CPU cores"),
    "gpu": Budget("gpu", None, 5000, 30, 256, 5, 3, None,
                  "45k images x 30 epochs per full trial, for one or more GPUs"),
}


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise NasError(f"--budget {name!r} must be one of {', '.join(BUDGETS)}")
    return BUDGETS[name]
