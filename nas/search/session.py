"""A search being run: its settings, folder, state, study, data and recorders, as every step after
the set-up reads them, and the bookkeeping of its trials in the study (how many trained, closing
the ones a kill or a Tune stop left RUNNING)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna

from nas.campaign.budget import Budget
from nas.campaign.recorder import CampaignRecorder
from nas.campaign.settings import CampaignSettings
from nas.campaign.state import State
from nas.campaign.time_model import Schedule, TimeModel
from nas.config import RunConfig
from nas.pareto import Objective
from nas.search.plan import SearchPlan
from nas.search.recorder import SearchRecorder
from nas.search.results import status_of
from nas.search.scheduler import scheduler_name
from nas.search.searcher import Limits
from nas.space import SearchSpace
from nas.status import Status

FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                   optuna.trial.TrialState.FAIL)
TRAINED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # a FAIL's span may hold a kill's downtime


@dataclass
class RunningSearch:
    """A search being run: what every step after the set-up reads."""

    settings: CampaignSettings[SearchPlan]
    name: str
    folder: Path
    state: State
    cfg: RunConfig
    budget: Budget
    space: SearchSpace
    objectives: list[Objective]
    limits: Limits
    data: Any  # DataBundle, on the CPU: sent to the workers through Ray's object store
    to_spec: Callable[[dict[str, Any]], Any]
    study: optuna.Study
    campaign: CampaignRecorder
    recorder: SearchRecorder
    started: float
    latency: Any = None  # nas.latency.LatencyCache when latency is an objective or a limit
    time_model: TimeModel | None = None  # calibrated on this machine by the estimate (CPU)

    @property
    def schedule(self) -> Schedule:
        """The images a trial trains and validates per epoch, and its batch."""
        return Schedule(len(self.data.train), len(self.data.val), self.cfg.train.batch_size)

    @property
    def plan(self) -> SearchPlan:
        return self.settings.plan

    @property
    def scheduler(self) -> str:
        """none | asha | moasha: what stops trials early in this search."""
        return scheduler_name(self.plan.asha, self.plan.scheduler, self.objectives, self.budget.early_stopping)

    @property
    def closed(self) -> dict[str, dict[str, str]]:
        return self.state.closed


def running_trials(s: RunningSearch) -> list[int]:
    """The study's trials left RUNNING (asked, never told)."""
    return [t.number for t in s.study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.RUNNING]


def close_running_trials(s: RunningSearch, status: Status, error: str = "",
                         only: list[int] | None = None) -> list[int]:
    """Trials left RUNNING (or those of them in `only`) by a kill (KILLED: not counted, so
    re-sampled) or by a Tune stop (FAILED with `error`): FAILed in the study (public `tell`),
    their status kept in the state."""
    stale = [n for n in running_trials(s) if only is None or n in only]
    for number in stale:
        s.study.tell(number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        s.closed[str(number)] = {"status": status.value, "error": error[:2000]}
    if stale:
        s.state.save()
    return stale


def trained_count(s: RunningSearch) -> int:
    """Trials that ran (completed, pruned or failed while training): free ones do not count."""
    statuses = [status_of(t, s.closed)[0]
                for t in s.study.get_trials(deepcopy=False, states=FINISHED_STATES)]
    return sum(1 for st in statuses if not st.untrained and not st.unfinished)
