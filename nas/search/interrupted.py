"""A search stopped while trials ran (Ctrl-C, a kill found by `--resume`): their points are recorded
stopped, not failed, and queued again with their marks, so `--resume` trains them first. Tune's own
Ctrl-C lines (resume with `Tuner.restore(...)`, not how a nas search resumes) are dropped."""

from __future__ import annotations

import logging

import optuna
import pandas as pd

from nas import mlflow_layout as ml
from nas.status import Status

TUNE_LOGGER = "ray.tune.tune"
STOP_SIGNAL = "Stop signal received"
TUNE_HINTS = (STOP_SIGNAL, "Resume experiment with", "Tuner.restore")
KEPT_ATTRS = ("reference",)  # what a re-queued point keeps of the stopped trial's user attributes


class TuneInterrupts(logging.Filter):
    """While entered: drops Ray Tune's interrupt lines and notes that its run was interrupted."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False

    def __enter__(self) -> TuneInterrupts:
        logging.getLogger(TUNE_LOGGER).addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(TUNE_LOGGER).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if STOP_SIGNAL in message:
            self.interrupted = True
            print("\ninterrupted: stopping the running trials (Ctrl-C again to quit at once)")
        return not any(hint in message for hint in TUNE_HINTS)


def requeue(study: optuna.Study, numbers: list[int]) -> None:
    """Queue the points of these (stopped) trials again, in their order, so they train next."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in numbers:
        trial = by_number[number]
        if trial.params:  # a trial stopped before it was asked anything has nothing to repeat
            study.enqueue_trial(dict(trial.params), user_attrs={
                k: trial.user_attrs[k] for k in KEPT_ATTRS if k in trial.user_attrs})


def shown_statuses(trials: pd.DataFrame) -> list[str]:
    """The trials' statuses for the summary line; a stopped trial whose point a later trial trained
    shown `INTERRUPTED (RUN AGAIN)` / `KILLED (RUN AGAIN)`."""
    if not len(trials):
        return []
    choices = [c for c in trials.columns if c.startswith(ml.CHOICE_PREFIX)]
    key = ([str(list(row)) for row in trials[choices].itertuples(index=False)] if choices  # NaN: a choice not asked
           else trials["trial"].astype(str).tolist())
    statuses = [Status(s) for s in trials["status"]]
    trained = {(k, t) for k, t, s in zip(key, trials["trial"], statuses) if s.trained}
    return [f"{s.value} (RUN AGAIN)" if s.unfinished and any(k == k2 and t2 > n for k2, t2 in trained) else s.value
            for k, n, s in zip(key, trials["trial"], statuses)]
