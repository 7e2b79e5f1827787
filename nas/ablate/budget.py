"""Ablation budgets: how much data and how many epochs every cell x seed gets.

Every cell of an ablation sees the same budget, so the comparison inside one table is fair even
when the budget is far below the paper's; the budget is logged (`budget.*` params, the table's
caption) so a table never claims more than it measured. `key=value` overrides go on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.errors import NasError


@dataclass(frozen=True)
class Budget:
    name: str
    train_subset: int | None  # training images per cell (None: all that the val split leaves)
    val_size: int  # validation images carved from the training set (what selection would use)
    test_subset: int | None  # test images evaluated once per cell (None: the whole test set)
    epochs: int
    batch_size: int
    summary: str
    data_extra: tuple[tuple[str, Any], ...] = ()  # more data.* settings (synthetic sizes for CI)

    def run_settings(self) -> dict[str, Any]:
        """The `nas run` config layer this budget stands for."""
        data = {"train_subset": self.train_subset, "val_size": self.val_size, **dict(self.data_extra)}
        return {"data": data, "train": {"epochs": self.epochs, "batch_size": self.batch_size}}


BUDGETS: dict[str, Budget] = {
    "smoke": Budget("smoke", 64, 32, 64, 1, 32, "seconds per cell: plumbing checks and CI",
                    # read only by data.name=synthetic: the CI stand-in stays tiny
                    (("synthetic_train", 256), ("synthetic_test", 64))),
    "cpu": Budget("cpu", 5000, 1000, 2000, 5, 64,
                  "about 13 min per MobileNetV2 cell and seed on one CPU core (32 px)"),
    "gpu": Budget("gpu", None, 5000, None, 30, 256, "45k images x 30 epochs, full test set"),
}

# Rough single-core CPU rates (multiply-adds per second) measured on this project's CIFAR nets,
# for the estimate printed before a run: training costs ~3x the forward MACs per image.
CPU_TRAIN_MACS_PER_S = 10e9 / 3
CPU_EVAL_MACS_PER_S = 5e9


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise NasError(f"--budget {name!r} must be one of {', '.join(BUDGETS)}")
    return BUDGETS[name]
