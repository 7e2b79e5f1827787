"""The time estimate a campaign prints before it starts: its points timed by the time model,
calibrated on this machine by measured SGD steps of some of them side by side (not a constant),
plus a fixed cost per point, spread over the workers. One estimate for a search and an ablation."""

from __future__ import annotations

import os
import threading
from typing import Any, Sequence

import torch

from nas.blocks import Cost
from nas.campaign.time_model import Schedule, TimeModel, Work
from nas.counting import count
from nas.device import select_device
from nas.formats import choose, step_timer

# Fixed seconds per point besides its training and evaluation, measured on this 2-core machine
# (the sum of the points' wall spans minus their compute, idle machine): a Ray task of an
# ablation (worker start, data to the device, MLflow writes) ~3 s; a Tune trial ~8 s (trial
# start and stop, a report per epoch, its MLflow child run).
POINT_OVERHEAD_S = {"ablation": 3.0, "search": 8.0}
MEASURED_STEPS = 4
PLANNED_STEPS = 10**6  # the measured points are ones a campaign will train: worth their format probe


def _steps(spec: Any, batch_size: int, precision: Any, out: list[float]) -> None:
    """Appends the seconds per SGD step of `spec` in `precision` (the format probe's own step; the
    first one untimed)."""
    step = step_timer(spec, batch_size, precision)
    step()
    out.append(sum(step() for _ in range(MEASURED_STEPS)) / MEASURED_STEPS)


def _step_seconds(specs: Sequence[Any], train: Any, *, threads: int, device: str) -> list[float]:
    """Seconds per SGD step of each of `specs`, in the format its runs will train in (the probe's
    pick, cached for them), all at once (a thread each: points side by side contend for the cores
    and memory), each with `threads` CPU threads."""
    dev = select_device(device)
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    seconds: list[list[float]] = [[] for _ in specs]
    try:
        formats = [choose(spec, dev, train, planned_steps=PLANNED_STEPS).precision for spec in specs]
        workers = [threading.Thread(target=_steps, args=(spec, train.batch_size, fmt, out))
                   for spec, fmt, out in zip(specs, formats, seconds)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        torch.set_num_threads(before)
    return [out[0] for out in seconds]


def calibrate(specs: Sequence[Any], train: Any, *, threads: int, device: str = "cpu") -> TimeModel:
    """The reference shape scaled to `specs` (as many as train side by side) measured at once with
    `train` (a TrainConfig: batch size, forced format)."""
    batch = train.batch_size
    seconds = _step_seconds(specs, train, threads=threads, device=device)
    return TimeModel.calibrated([(count(spec).cost, s / batch) for spec, s in zip(specs, seconds)], batch)


def side_by_side(concurrency: int, threads: int) -> int:
    """How many points train at once on this machine (the measurement runs as many)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(concurrency, cores // max(1, threads)))


def spread(costed: Sequence[tuple[Any, Cost]], k: int) -> list[Any]:
    """`k` of the (spec, cost) pairs' specs, evenly spaced in predicted seconds: what to measure,
    so the calibration sees the range a campaign trains, not one corner of it."""
    per_image = lambda pair: TimeModel().seconds(Work(pair[1], Schedule(1, 0, 128), 1.0))  # noqa: E731
    ranked = sorted(costed, key=per_image)
    return [ranked[int((i + 0.5) * len(ranked) / k)][0] for i in range(min(k, len(ranked)))]


def estimate_s(work: Sequence[Work], model: TimeModel, concurrency: int, campaign: str, *,
               more: int = 0, like: Sequence[Work] = (), drift: float = 1.0) -> float:
    """Wall seconds of `work`, plus `more` points not chosen yet at `drift` x the mean of `like`, on
    `concurrency` workers, each with the `campaign`'s ("search" or "ablation") fixed cost."""
    overhead = POINT_OVERHEAD_S[campaign]
    total = sum(model.seconds(w) + overhead for w in work)
    if more and like:
        total += more * (drift * sum(model.seconds(w) for w in like) / len(like) + overhead)
    return total / max(concurrency, 1)


def describe(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def mean_epochs(budget: Any, *, early_stopping: bool) -> float:
    """Epochs an average search trial trains: a 1/rf share reaches each next (geometric) rung."""
    if not early_stopping:
        return float(budget.epochs)
    epochs, share, total, prev = budget.grace_epochs, 1.0, 0.0, 0
    while epochs < budget.epochs:
        total += share * (epochs - prev)
        prev, share, epochs = epochs, share / budget.reduction_factor, epochs * budget.reduction_factor
    return total + share * (budget.epochs - prev)
