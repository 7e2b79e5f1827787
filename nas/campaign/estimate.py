"""The time estimate a campaign prints before it starts, from a measured training rate: a few
SGD steps of a representative net on this machine, scaled by each point's MACs and images,
spread over the workers. Calibrated by measuring, not by a constant."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

EVAL_COST = 1 / 3  # an evaluated image costs about a third of a trained one (no backward)
POINT_OVERHEAD_S = 3.0  # per point: worker start, data to the device, MLflow writes
MEASURED_STEPS = 4


@dataclass(frozen=True)
class Work:
    """One point's work: its MACs, training images per epoch, epochs and evaluated images."""

    macs: int
    train_images: int
    epochs: float
    eval_images: int


def measure_rate(spec: Any, batch_size: int, *, threads: int, device: str = "cpu") -> float:
    """Seconds per trained image per multiply-add of `spec` on `device` (a few SGD steps at
    `batch_size` with `threads` CPU threads, the first one not timed)."""
    import torch

    from nas.builder import build_model
    from nas.counting import count
    from nas.device import select_device, synchronize

    dev = select_device(device)
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        model = build_model(spec).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        res, ch = spec.input.resolution, spec.input.channels
        x = torch.randn(batch_size, ch, res, res, device=dev)
        y = torch.randint(0, spec.num_classes, (batch_size,), device=dev)
        for step in range(MEASURED_STEPS + 1):
            if step == 1:
                synchronize(dev)
                start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        synchronize(dev)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
    return seconds / (MEASURED_STEPS * batch_size * max(count(spec).macs, 1))


def estimate_s(work: list[Work], rate: float, concurrency: int) -> float:
    """Wall seconds for `work` at `rate` (see measure_rate) on `concurrency` workers."""
    total = sum(w.macs * rate * (w.train_images * w.epochs + EVAL_COST * w.eval_images)
                + POINT_OVERHEAD_S for w in work)
    return total / max(concurrency, 1)


def describe(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def mean_epochs(budget: Any, *, early_stopping: bool) -> float:
    """Epochs an average search trial trains: with successive halving a 1/rf share of the
    trials reaches each next rung (geometric rungs from grace_epochs)."""
    if not early_stopping:
        return float(budget.epochs)
    epochs, share, total, prev = budget.grace_epochs, 1.0, 0.0, 0
    while epochs < budget.epochs:
        total += share * (epochs - prev)
        prev, share, epochs = epochs, share / budget.reduction_factor, epochs * budget.reduction_factor
    return total + share * (budget.epochs - prev)
