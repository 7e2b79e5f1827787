"""The time estimate a campaign prints before it starts, from a measured training rate: a few
SGD steps of a representative net on this machine, scaled by each point's MACs and images,
spread over the workers. Calibrated by measuring, not by a constant."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

EVAL_COST = 1 / 3  # an evaluated image costs about a third of a trained one (no backward)
# Fixed seconds per point besides its training and evaluation, measured on this 2-core machine
# (the sum of the points' wall spans minus their compute, idle machine): a Ray task of an
# ablation (worker start, data to the device, MLflow writes) ~3 s; a Tune trial ~8 s (trial
# start and stop, a report per epoch, its MLflow child run).
POINT_OVERHEAD_S = {"ablation": 3.0, "search": 8.0}
MEASURED_STEPS = 4


@dataclass(frozen=True)
class Work:
    """One point's work: its MACs, training images per epoch, epochs and evaluated images."""

    macs: int
    train_images: int
    epochs: float
    eval_images: int


def _steps(spec: Any, batch_size: int, device: Any, out: list[float]) -> None:
    """A few SGD steps of `spec` (the first one not timed); appends the seconds per step."""
    import torch

    from nas.builder import build_model
    from nas.device import synchronize

    model = build_model(spec).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    res, ch = spec.input.resolution, spec.input.channels
    x = torch.randn(batch_size, ch, res, res, device=device)
    y = torch.randint(0, spec.num_classes, (batch_size,), device=device)
    for step in range(MEASURED_STEPS + 1):
        if step == 1:
            synchronize(device)
            start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    synchronize(device)
    out.append((time.perf_counter() - start) / MEASURED_STEPS)


def measure_rate(spec: Any, batch_size: int, *, threads: int, device: str = "cpu",
                 parallel: int = 1) -> float:
    """Seconds per trained image per multiply-add of `spec` on `device`, with `parallel` copies
    training at once (the points a campaign runs side by side on this machine contend for its
    cores and memory), each with `threads` CPU threads."""
    import threading

    import torch

    from nas.counting import count
    from nas.device import select_device

    dev = select_device(device)
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    seconds: list[float] = []
    try:
        workers = [threading.Thread(target=_steps, args=(spec, batch_size, dev, seconds))
                   for _ in range(max(1, parallel))]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        torch.set_num_threads(before)
    return sum(seconds) / len(seconds) / (batch_size * max(count(spec).macs, 1))


def side_by_side(concurrency: int, threads: int) -> int:
    """How many points train at once on this machine (the measurement runs as many)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(concurrency, cores // max(1, threads)))


def estimate_s(work: list[Work], rate: float, concurrency: int, campaign: str) -> float:
    """Wall seconds for `work` at `rate` (see measure_rate) on `concurrency` workers, with the
    `campaign`'s ("search" or "ablation") fixed cost per point."""
    total = sum(w.macs * rate * (w.train_images * w.epochs + EVAL_COST * w.eval_images)
                + POINT_OVERHEAD_S[campaign] for w in work)
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
