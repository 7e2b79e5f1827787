"""A search being run (`RunningSearch`: what every step after the set-up reads) and the
bookkeeping of its trials in the study: how many trained, closing those left RUNNING."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

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

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
TRAINED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)  # not FAIL: its span may hold a kill's downtime


@dataclass
class RunningSearch:
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
        """A trial's images trained and validated per epoch, and its batch."""
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
    return [t.number for t in s.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]


def close_running_trials(s: RunningSearch, status: Status, error: str = "",
                         only: list[int] | None = None) -> list[int]:
    """Trials left RUNNING (or those of them in `only`) by a kill or a Tune stop: FAIL in the study,
    `status` (KILLED, INTERRUPTED: trained again; FAILED) and `error` kept in the state."""
    stale = [n for n in running_trials(s) if only is None or n in only]
    for number in stale:
        s.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        s.closed[str(number)] = {"status": status.value, "error": error[:2000]}
    if stale:
        s.state.save()
    return stale


def trained_count(s: RunningSearch) -> int:
    """Trials that ran (completed, pruned or failed while training): free ones do not count."""
    statuses = [status_of(t, s.closed)[0] for t in s.study.get_trials(deepcopy=False, states=FINISHED_STATES)]
    return sum(not st.untrained and not st.unfinished for st in statuses)


def queue_references(s: RunningSearch, study: optuna.Study) -> None:
    """The space's reference points (the paper nets) queued first, no more than the search trains."""
    for ref_name, point in s.space.references[:s.plan.trials] if s.plan.references else []:
        study.enqueue_trial(point, user_attrs={"reference": ref_name})
