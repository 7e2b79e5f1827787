"""Budgets: named fidelities, so results are comparable (a front or table found at `cpu` says so
in MLflow and its caption; every point of it saw the same data and epochs). A search spends its
compute on many short trials, an ablation on few, longer, repeated and tested cells: a table each."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from nas.errors import NasError


@dataclass(frozen=True)
class Budget:
    name: str
    train_subset: int | None  # training images per point (None: all that the val split leaves)
    val_size: int  # validation images carved from the training set (what selection uses)
    epochs: int  # full fidelity (a search's scheduler may stop a trial earlier)
    batch_size: int
    summary: str
    test_subset: int | None = None  # test images evaluated once per point (None: all)
    grace_epochs: int = 1  # early stopping: every trial gets at least this many epochs
    reduction_factor: int = 2  # early stopping: keep the top 1/rf at each rung
    # does `--scheduler auto` stop trials early at this budget? Not where the first rungs rank
    # architectures worse than their MAC counts do (benchmarks/fidelity.py measures it)
    early_stopping: bool = True
    default_max_macs: float | None = None  # over-budget architectures are rejected before training
    data_extra: tuple[tuple[str, Any], ...] = ()  # more data.* settings (synthetic sizes for CI)

    def run_layer(self) -> dict[str, Any]:
        """The `nas run` config layer this budget stands for."""
        data = {"train_subset": self.train_subset, "val_size": self.val_size, **dict(self.data_extra)}
        return {"data": data, "train": {"epochs": self.epochs, "batch_size": self.batch_size},
                "progress": False}

    def with_epochs(self, epochs: int) -> "Budget":
        """`train.epochs=` on the command line: the full fidelity moves, the first rung with it."""
        return replace(self, epochs=epochs, grace_epochs=min(self.grace_epochs, epochs))


SEARCH_BUDGETS: dict[str, Budget] = {
    "smoke": Budget("smoke", 256, 128, 2, 64, "seconds per trial: plumbing checks and CI"),
    # 15,000 images x 2 epochs, 2,000 validation images: the cheapest budget the fidelity study
    # measured with Kendall tau >= 0.6 against 15,000 x 4 (0.70 over 16 ShuffleNet archs; the
    # former 3,000 x 4 with 500 validation images ranked them at 0.25, its first epoch at -0.61:
    # small nets learn first), and 0.63 in its own study against 30,000 x 5 (30,000 x 1, the same
    # image-epochs, 0.68: a difference 16 archs cannot tell, paired bootstrap -0.09..+0.20).
    # No early stopping: a rung at epoch 1 ranked at 0.34, and in benchmarks/search_quality.py
    # stopping at it lost hypervolume for every sampler
    "cpu": Budget("cpu", 15000, 2000, 2, 128, "70 to 105 min for 50 ShuffleNet trials on 2 CPU cores",
                  default_max_macs=25e6, early_stopping=False),
    "gpu": Budget("gpu", None, 5000, 30, 256, "45k images x 30 epochs per full trial, for one or more GPUs",
                  grace_epochs=5, reduction_factor=3),
}

ABLATION_BUDGETS: dict[str, Budget] = {
    "smoke": Budget("smoke", 64, 32, 1, 32, "seconds per cell: plumbing checks and CI", test_subset=64,
                    # read only by data.name=synthetic: the CI stand-in stays tiny
                    data_extra=(("synthetic_train", 256), ("synthetic_test", 64))),
    "cpu": Budget("cpu", 5000, 1000, 5, 64,
                  "about 13 min per MobileNetV2 cell and seed on one CPU core (32 px)", test_subset=2000),
    "gpu": Budget("gpu", None, 5000, 30, 256, "45k images x 30 epochs, full test set"),
}

BUDGETS: dict[str, dict[str, Budget]] = {"search": SEARCH_BUDGETS, "ablation": ABLATION_BUDGETS}


def get_budget(campaign: str, name: str) -> Budget:
    """The `name` budget of a `search` or an `ablation`; one line naming the choices if unknown."""
    table = BUDGETS[campaign]
    if name not in table:
        raise NasError(f"--budget {name!r} must be one of {', '.join(table)}")
    return table[name]
