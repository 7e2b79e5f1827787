"""A search trial in a Ray Tune worker: a thin adapter from Tune to `nas.job.execute`. The spec comes
by value in the Tune config (a worker on another host never reads the driver's disk); every epoch is
reported with the trial's fixed costs, so the scheduler compares trials on every objective."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ray import tune

from nas.config import RunConfig
from nas.job import Job, JobResult, execute, node_id, one_line
from nas.status import Status
from nas.workers import worker_device

TRIAL_KEY = "_nas_trial"  # the Optuna trial number, carried in each Ray trial's config
SPEC_KEY = "_nas_spec"  # the trial's NetSpec (frozen, checked when sampled), carried in its config
COSTS_KEY = "_nas_costs"  # {"macs": .., "params": .., "latency_ms": ..}: known before training


@dataclass(frozen=True)
class TrialSetup:
    cfg: RunConfig
    device: str  # the worker plan's kind: cpu | cuda | npu
    threads: int


class _FromRay(BaseException):
    """Carries Ray's own control-flow exceptions (a trial stopped by ASHA) past `execute`."""


def run_trial(config: dict[str, Any], *, setup: TrialSetup, data: Any) -> None:
    number = config[TRIAL_KEY]
    costs = dict(config.get(COSTS_KEY) or {})
    clock = {"start": time.perf_counter(), "reporting": 0.0}

    def report(metrics: dict[str, Any]) -> None:
        """`train_s`: time training and validating so far, without Tune's reporting (the overhead
        benchmark splits trial time into training and framework)."""
        begun = time.perf_counter()
        train_s = begun - clock["start"] - clock["reporting"]
        try:
            tune.report({**metrics, **costs, "train_s": train_s})
        except BaseException as err:
            raise _FromRay(err) from err
        finally:
            clock["reporting"] += time.perf_counter() - begun

    try:
        job = Job(config[SPEC_KEY], setup.cfg, device=worker_device(setup.device), threads=setup.threads,
                  test=False, point=f"trial {number}")
        result = execute(job, data, report).result
    except _FromRay as wrapped:
        raise wrapped.args[0] from None
    except Exception as err:  # noqa: BLE001 - the device could not be had: the trial FAILED
        result = JobResult(Status.FAILED, node=node_id(), error=one_line(err))
    if result.error:  # recorded FAILED by the driver, the search goes on
        tune.report({"nas_error": result.error, "traceback": result.traceback, "epoch": 0,
                     "val_acc": 0.0, "node": result.node, "device": result.device, **costs})
