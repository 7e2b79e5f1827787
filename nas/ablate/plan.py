"""What an ablation runs, as `nas ablate` takes it (composed with `CampaignSettings`); each field
carries its flag (`kept`: `--resume` keeps the value the ablation started with)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nas.campaign.settings import CampaignKind, flag


@dataclass(frozen=True)
class AblatePlan:
    KIND: ClassVar[CampaignKind] = CampaignKind("ablation", "cell", "ablations", "EXPERIMENT")

    experiment: str  # experiments/NAME.yaml, a path, or a bare NAME (a positional word)
    seeds: int | None = flag("--seeds", "run the first N seeds (default: the file's list)", type=int)
    budget: str | None = flag("--budget", "smoke | cpu | gpu (default: the file's)", kept=True)
    test_images: int | None = flag("--test-images", "test images per cell, fixed and class-balanced"
                                   " (default: the budget's; 0: all)", type=int, kept=True)
    retry_failed: bool = flag("--retry-failed", "with --resume: run FAILED cells again", False)
