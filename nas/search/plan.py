"""What a search proposes, as `nas search` takes it: a `nas.campaign.settings.CampaignSettings` plan,
each field with its flag (`kept`: `--resume` keeps the value the search started with)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nas.campaign.settings import CampaignKind, flag

SAMPLER_HELP = ("auto (the default: ehvi for val_acc against macs or params on a finite space, else gp)"
                " | ehvi (GP on val_acc, EHVI with the costs nas.count knows) | gp (Optuna's GP sampler,"
                " logEHVI) | nsga2 | tpe | random")


@dataclass(frozen=True)
class SearchPlan:
    KIND: ClassVar[CampaignKind] = CampaignKind("search", "trial", "searches", "SPACE")

    space: str = flag("--space", "search space name or YAML path", required=True)
    trials: int = flag("--trials", "trials to train (infeasible samples are free)", 50, type=int)
    objectives: str = flag("--objectives", "comma list: val_acc (max), macs, params, latency (min;"
                           " measured, see nas latency)", "val_acc,macs", kept=True)
    latency_runtime: str = flag("--latency-runtime", "onnxruntime | executorch | torch (nas.latency.RUNTIMES:"
                                " where latency is measured)", "onnxruntime", kept=True)
    latency_threads: int = flag("--latency-threads", "threads the latency is measured with", 1, type=int,
                                kept=True)
    sampler: str = flag("--sampler", SAMPLER_HELP, "auto")  # searcher.pick_sampler; README: "Benchmarks"
    seed: int = flag("--seed", "the sampler's seed", 0, type=int, kept=True)
    budget: str | None = flag("--budget", "smoke | cpu | gpu (default: gpu if visible, else cpu)", kept=True)
    asha: bool = flag("--no-asha", "train every trial to the full budget", True, kept=True)
    scheduler: str = flag("--scheduler", "early stopping: auto (the budget's: none at cpu; else moasha with"
                          " several objectives, asha with one) | moasha | asha", "auto", kept=True)
    retrain_top: int = flag("--retrain-top", "retrain the K best front members", 0, type=int)
    references: bool = flag("--no-references", "skip the space's reference points (the paper nets,"
                            " evaluated first)", True, kept=True)
    max_macs: float | None = flag("max_macs=", "architectures over it are rejected before training",
                                  type=float, kept=True)
    max_params: float | None = flag("max_params=", type=float, kept=True)
    max_latency_ms: float | None = flag("max_latency_ms=", type=float, kept=True)
