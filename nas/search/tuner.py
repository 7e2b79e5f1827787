"""Ray Tune running a search's remaining trials (the Optuna searcher, the early-stopping scheduler,
the recorder callback, the progress bar), run again after a worker loss aborted it."""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
from ray import tune
from ray.tune.error import TuneError

from nas.campaign.progress import Progress
from nas.errors import NasError
from nas.pareto import pareto_mask
from nas.search.interrupted import TuneInterrupts, requeue
from nas.search.recorder import RecorderCallback
from nas.search.scheduler import make_scheduler
from nas.search.searcher import OBSERVE_FREE, OptunaSearcher
from nas.search.session import RunningSearch, close_running_trials, running_trials, trained_count
from nas.search.trial import TrialSetup, run_trial
from nas.status import Status

NOT_STARTED = "not started: Ray Tune stopped before it ran; queued again"
TUNER_RESTARTS = 3  # Tune runs again for the remaining trials after a worker loss aborted it
# MLflow and the campaign folder are the record: Tune's own CSV, JSON and TensorBoard files per
# trial are not written (its TensorBoard logger also printed a line per trial about the spec)
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


def run_tuner(s: RunningSearch, workers: Any, setup: TrialSetup) -> bool:
    """Tune runs the remaining trials; when it stops (a worker killed by Ray's memory monitor, a lost
    node), its running trials are FAILED and it runs again, up to 3 times. Returns whether Ctrl-C
    stopped it (its running trials are then INTERRUPTED and re-queued)."""
    for attempt in range(TUNER_RESTARTS + 1):
        remaining = max(0, s.plan.trials - trained_count(s))
        if not remaining:
            return False
        try:
            with TuneInterrupts() as watcher:
                _fit(s, f"ray-{attempt}", remaining, workers, setup)
            if watcher.interrupted:
                _stop_running(s, Status.INTERRUPTED, "interrupted (Ctrl-C); --resume trains it again")
            return watcher.interrupted
        except (TuneError, RuntimeError, OSError) as err:
            reason = _last_line(err)
            lost = _stop_running(s, Status.FAILED, f"worker lost: {reason}")
            if attempt == TUNER_RESTARTS:
                raise NasError(f"Ray Tune stopped {attempt + 1} times; last: {reason}") from err
            print(f"\nRay Tune stopped ({reason[:200]}); {len(lost)} running trial(s) recorded FAILED,"
                  " continuing with the remaining trials")
    return False


def _stop_running(s: RunningSearch, status: Status, message: str) -> list[int]:
    """Close the trials Tune was running, in the study and in MLflow; stopped ones (not failed) are
    queued again. A point handed to Tune that never started (no MLflow run yet) did not run: it is
    INTERRUPTED and queued again, never a FAILED trial that spent the budget without training."""
    unstarted = [n for n in running_trials(s) if n not in s.recorder.run_ids]
    close_running_trials(s, Status.INTERRUPTED, NOT_STARTED, only=unstarted)
    stopped = close_running_trials(s, status, message)
    for number in stopped:
        if number in s.recorder.children:
            s.recorder.finish(number, status, message[:2000])
    for number in unstarted:
        s.recorder.unstarted(s.study.get_trials(deepcopy=False)[number], NOT_STARTED)
    requeue(s.study, sorted(unstarted + (stopped if status.unfinished else [])))
    return stopped


def _last_line(err: BaseException) -> str:
    """Tune wraps a worker's traceback in its error text: its last line names the cause."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def _progress(s: RunningSearch, remaining: int) -> tuple[Progress, Callable, Callable]:
    points: list[list[float]] = []  # objective values of completed trials, for the front size
    directions = [o.direction for o in s.objectives]
    front = lambda: f"front {int(pareto_mask(np.array(points), directions).sum()) if points else 0}"
    bar = Progress(remaining, "trials", enabled=s.settings.progress, extra=front)

    def on_done(status: Status, result: dict) -> None:
        if status is Status.COMPLETED:
            points.append([float(result.get(o.name, float("nan"))) for o in s.objectives])
        bar.done(status)

    def on_free(sampled) -> None:
        s.recorder.infeasible(sampled)
        bar.done(sampled.status, trained=False)

    return bar, on_done, on_free


def _fit(s: RunningSearch, run_name: str, remaining: int, workers: Any, setup: TrialSetup) -> None:
    bar, on_done, on_free = _progress(s, remaining)
    searcher = OptunaSearcher(s.study, s.space, s.objectives, to_spec=s.to_spec, limits=s.limits,
                              max_epochs=s.budget.epochs, trials=remaining, on_infeasible=on_free,
                              observe_free=s.plan.sampler in OBSERVE_FREE,
                              latency=(lambda spec: s.latency.get(spec).median_ms) if s.latency else None,
                              time_model=s.time_model, schedule=s.schedule)
    trainable = tune.with_resources(tune.with_parameters(run_trial, setup=setup, data=s.data),
                                    workers.resources())
    tune_config = tune.TuneConfig(search_alg=searcher, scheduler=make_scheduler(s.scheduler, s.objectives, s.budget),
                                  num_samples=-1, max_concurrent_trials=workers.concurrency, reuse_actors=True)
    run_config = tune.RunConfig(name=run_name, storage_path=str((s.folder / "ray").resolve()), verbose=0,
                                callbacks=[RecorderCallback(s.recorder, s.budget.epochs, on_done, bar.started)],
                                failure_config=tune.FailureConfig(max_failures=2),
                                checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
    try:
        tune.Tuner(trainable, tune_config=tune_config, run_config=run_config).fit()
    finally:
        bar.close()
