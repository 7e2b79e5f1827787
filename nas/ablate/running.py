"""An ablation being run: its settings, experiment, budget, seeds, state, data, grid and
recorder, as every step after the set-up reads them (the driver and the cell loop)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.ablate.experiment import Experiment
from nas.ablate.grid import CellRun, ResolvedData
from nas.ablate.plan import AblatePlan
from nas.ablate.recorder import AblationRecorder
from nas.campaign.budget import Budget
from nas.campaign.recorder import CampaignRecorder
from nas.campaign.settings import CampaignSettings
from nas.campaign.state import State


@dataclass
class RunningAblation:
    settings: CampaignSettings[AblatePlan]
    exp: Experiment
    budget: Budget
    seeds: tuple[int, ...]
    name: str
    state: State
    data: ResolvedData
    grid: list[CellRun]
    test_images: int | None
    recorder: AblationRecorder
    started: float

    @property
    def campaign(self) -> CampaignRecorder:
        return self.recorder.campaign

    @property
    def first(self) -> Any:
        return next(iter(self.data.bundles.values()))

    def shown_test(self) -> int:
        return min(self.test_images or len(self.first.test), len(self.first.test))
