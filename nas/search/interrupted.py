"""A search stopped while trials ran (Ctrl-C, or a kill found by `--resume`): the points it was
training are recorded as stopped, not failed, and queued again in the study with their marks
(a paper reference stays a reference), so `--resume` trains exactly them before sampling more.

Ray Tune answers the first Ctrl-C by stopping its trials and logging how to resume with its own
`Tuner.restore(...)`, which is not how a nas search resumes: those lines are dropped here and the
driver prints its own `--resume` command."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import optuna
import pandas as pd

from nas import mlflow_layout as ml
from nas.status import Status

TUNE_LOGGER = "ray.tune.tune"
STOP_SIGNAL = "Stop signal received"
TUNE_HINTS = (STOP_SIGNAL, "Resume experiment with", "Tuner.restore")
KEPT_ATTRS = ("reference",)  # what a re-queued point keeps of the stopped trial's user attributes


class TuneInterrupts(logging.Filter):
    """Drops Ray Tune's interrupt lines and notes that its run was interrupted."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if STOP_SIGNAL in message:
            self.interrupted = True
            print("\ninterrupted: stopping the running trials (Ctrl-C again to quit at once)")
        return not any(hint in message for hint in TUNE_HINTS)


@contextmanager
def tune_interrupts() -> Iterator[TuneInterrupts]:
    logger = logging.getLogger(TUNE_LOGGER)
    watcher = TuneInterrupts()
    logger.addFilter(watcher)
    try:
        yield watcher
    finally:
        logger.removeFilter(watcher)


def requeue(study: optuna.Study, numbers: list[int]) -> None:
    """Queue the points of these (stopped) trials again, in their order, so they train next."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in numbers:
        trial = by_number[number]
        if trial.params:  # a trial stopped before it was asked anything has nothing to repeat
            study.enqueue_trial(dict(trial.params), user_attrs={
                k: trial.user_attrs[k] for k in KEPT_ATTRS if k in trial.user_attrs})


def shown_statuses(trials: pd.DataFrame) -> list[str]:
    """The trials' statuses for the summary line, a stopped trial whose point a later trial
    trained shown as `interrupted (run again)` / `killed (run again)`."""
    if not len(trials):
        return []
    choices = [c for c in trials.columns if c.startswith(ml.CHOICE_PREFIX)]
    key = ([str(list(row)) for row in trials[choices].itertuples(index=False)] if choices  # NaN: a choice not asked
           else trials["trial"].astype(str).tolist())
    statuses = [Status(s) for s in trials["status"]]
    trained = {(k, t) for k, t, s in zip(key, trials["trial"], statuses) if s.trained}
    shown = []
    for k, number, status in zip(key, trials["trial"], statuses):
        again = status.unfinished and any(k == k2 and t2 > number for k2, t2 in trained)
        shown.append(f"{status.value} (RUN AGAIN)" if again else status.value)
    return shown
