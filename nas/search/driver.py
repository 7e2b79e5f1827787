"""`nas search`: Optuna samples architectures, Ray Tune trains them with early stopping, this
process records MLflow and reports the Pareto front. A search's durable state is its folder:
`optuna.db` (the study), `state.json` (settings, the parent run id, trials the driver closed),
`trials.csv`, `pareto.png`, `front/*.yaml`; `--resume` reopens the study and trains the rest.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna

from nas import mlflow_layout as ml
from nas.campaign import estimate
from nas.campaign.budget import get_budget
from nas.campaign.time_model import TimeModel, Work
from nas.campaign.lock import campaign_folder, setup_guard
from nas.campaign.lock import acquire, release
from nas.campaign.recorder import CampaignRecorder
from nas.campaign.resume import resumed_settings, started_settings
from nas.campaign.settings import CampaignSettings
from nas.campaign.state import open_state, stored_state
from nas.config import load_run_config, spec_overrides
from nas.data import load_data
from nas.errors import NasError
from nas.pareto import Objective, parse_objectives
from nas.search.recorder import SearchRecorder, latency_tags
from nas.pareto_plot import plot_front, reference_points, search_title
from nas.search.results import SearchOutcome, mark_front, status_of, trials_frame, write_front
from nas.search.expected import check_reachable, expected_points
from nas.search.interrupted import requeue
from nas.search.plan import SearchPlan
from nas.search.scheduler import scheduler_name
from nas.search.searcher import AUTO, SAMPLERS, Limits, pick_sampler
from nas.search.session import (FINISHED_STATES, TRAINED_STATES, RunningSearch, close_running_trials,
                                queue_references, trained_count)
from nas.search.trial import TrialSetup
from nas.search.tuner import run_tuner
from nas.space import load_space
from nas.status import Status
from nas.table import millions
from nas.tracking import preflight
from nas.workers import init_ray, plan_workers

__all__ = ["SearchPlan", "SearchOutcome", "search"]

SEARCH_OBJECTIVES = ("val_acc", "macs", "params", "latency", "latency_ms")  # latency: latency_ms
OBSERVED_TRIALS = 4  # a resumed search estimates its time from its own trials once it has this many
SearchSettings = CampaignSettings[SearchPlan]


def _check_settings(settings: SearchSettings) -> list[Objective]:
    settings.check()
    plan = settings.plan
    if plan.trials < 1:
        raise NasError(f"--trials {plan.trials} must be >= 1")
    if plan.sampler not in (AUTO, *SAMPLERS):
        raise NasError(f"--sampler {plan.sampler!r} must be one of {', '.join((AUTO, *SAMPLERS))}")
    if not plan.asha and plan.scheduler != "auto":
        raise NasError(f"--scheduler {plan.scheduler} stops trials early; it contradicts --no-asha")
    names = [t.partition(":")[0].strip() for t in str(plan.objectives).split(",")]
    unsupported = [n for n in names if n and n not in SEARCH_OBJECTIVES]
    if unsupported:  # before the generic parser, whose list of known names includes test_acc
        raise NasError(f"--objectives: {', '.join(unsupported)} cannot be searched on; use "
                       f"{', '.join(SEARCH_OBJECTIVES)} (val_acc is the validation split's accuracy;"
                       " test_acc is reported, never selected on)")
    return [Objective("latency_ms", o.direction) if o.name == "latency" else o
            for o in parse_objectives(plan.objectives)]


def _study(folder: Path, name: str, objectives: list[Objective], settings: SearchSettings,
           planned_trials: int) -> optuna.Study:
    """The durable study; `planned_trials`: the first run's --trials (a resumed NSGA-II's population)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}",
                                         engine_kwargs={"connect_args": {"timeout": 60}})
    directions = ["maximize" if o.direction == "max" else "minimize" for o in objectives]
    return optuna.create_study(study_name=name, storage=storage, directions=directions,
                               sampler=SAMPLERS[settings.plan.sampler](settings.plan.seed, planned_trials),
                               load_if_exists=settings.resume)


def _same_space(given: str, stored: str, name: str) -> None:
    if Path(given).stem != Path(stored).stem:
        raise NasError(f"search {name!r} searches space {stored!r}, not {given!r}; resume it with --space {stored}")


def _resumed(settings: SearchSettings, name: str) -> tuple[SearchSettings, SearchSettings | None]:
    """The settings a resumed search goes on with, and those it started with (None: fresh)."""
    stored = stored_state(campaign_folder(settings.output_dir, name), what="search", resume=settings.resume)
    started = started_settings(stored, SearchPlan)
    _same_space(settings.plan.space, started.plan.space if started else settings.plan.space, name)
    return resumed_settings(settings, started, name=name), started


def _setup(settings: SearchSettings, started: float) -> RunningSearch:
    _check_settings(settings)
    space = load_space(settings.plan.space)  # read once: the workers get specs, never this file
    name = settings.name or f"{space.name}-{datetime.now():%Y%m%d-%H%M%S}"
    folder = campaign_folder(settings.output_dir, name)
    settings, first = _resumed(settings, name)
    objectives = _check_settings(settings)
    plan = settings.plan
    scheduler_name(plan.asha, plan.scheduler, objectives)
    latency = None  # measured per shape when latency is an objective or a limit (latency.json)
    if plan.max_latency_ms is not None or any(o.name == "latency_ms" for o in objectives):
        from nas.latency import search_cache

        latency = search_cache(plan.latency_runtime, plan.latency_threads, folder)
    import torch

    budget = get_budget("search", plan.budget or ("gpu" if torch.cuda.is_available() else "cpu"))
    cfg = load_run_config(base=budget.run_layer(), overrides=settings.run)
    space.refuse_keys(settings.run.values)
    preflight(cfg.mlflow.tracking_uri, {"--output-dir": settings.output_dir}, tracking=cfg.mlflow.enabled)
    budget = budget.with_epochs(cfg.train.epochs)
    acquire(folder, "search")
    state = open_state(folder, what="search", resume=settings.resume)
    settings = settings.with_plan(budget=budget.name, sampler=pick_sampler(
        plan.sampler, objectives, space, first.plan.sampler if first else None))
    data = load_data(cfg.data, "cpu")
    limits = Limits(plan.max_macs if plan.max_macs is not None else budget.default_max_macs,
                    plan.max_params, plan.max_latency_ms)
    to_spec = functools.partial(space.to_spec, **spec_overrides(cfg, data))  # a sampled point -> its NetSpec
    check_reachable(space, to_spec, limits)
    study = _study(folder, name, objectives, settings, (first or settings).plan.trials)
    campaign = CampaignRecorder(cfg.mlflow, name, state.data.get("parent_run_id"))
    recorder = SearchRecorder(campaign, name, latency_tags(latency))
    return RunningSearch(settings, name, folder, state, cfg, budget, space, objectives, limits, data,
                         to_spec, study, campaign, recorder, started, latency)


def _start_records(s: RunningSearch) -> int:
    """A fresh search: its parent run, the reference points queued first. A resumed one: trials a
    kill left RUNNING closed KILLED and queued again; returns how many."""
    if not s.settings.resume:
        queue_references(s, s.study)
        s.campaign.start_parent(ml.KIND_SEARCH, {
            "search": s.settings.params(), "budget": asdict(s.budget), "limits": asdict(s.limits),
            "data_sizes": {k: s.data.describe()[k] for k in ("train", "val", "test")}},
            {ml.SPACE: s.space.name, ml.OBJECTIVES: ",".join(o.name for o in s.objectives),  # latency: latency_ms
             ml.BUDGET: s.budget.name, ml.SELECTION_METRIC: "val_acc (validation split carved from train)",
             **latency_tags(s.latency)})
        if s.space.path and Path(s.space.path).is_file():
            s.campaign.parent.log_artifact(s.space.path)
        s.state.data.update({"parent_run_id": s.campaign.parent.run_id, "settings": s.settings.stored()})
        s.state.save()
        return 0
    killed = close_running_trials(s, Status.KILLED)
    requeue(s.study, killed)  # trained again first, a paper reference as a reference
    finished = {t.number: status_of(t, s.closed)[0]
                for t in s.study.get_trials(deepcopy=False, states=FINISHED_STATES)}
    s.recorder.close_leftovers(finished)
    return len(killed)


def _plan_line(s: RunningSearch, remaining: int, killed: int, workers: Any) -> None:
    print(f"search {s.name}: space {s.space.name}, {remaining} trials to run"
          f" ({trained_count(s)} done before{', ' + str(killed) + ' killed ones re-sampled' if killed else ''}),"
          f" {workers.describe()}")
    name = s.scheduler
    asha = (f", {'MO-ASHA' if name == 'moasha' else 'ASHA'} from {s.budget.grace_epochs} epoch(s),"
            f" keep 1/{s.budget.reduction_factor}" if name != "none" else ", no early stopping")
    print(f"  budget {s.budget.name}: {len(s.data.train)} train images, val {len(s.data.val)},"
          f" {s.cfg.train.epochs} epochs{asha}; objectives {s.plan.objectives}, sampler {s.plan.sampler};"
          f" limits {millions(s.limits.max_macs) if s.limits.max_macs else '-'} MACs,"
          f" {millions(s.limits.max_params) if s.limits.max_params else '-'} params")
    if s.latency is not None:
        limit = f", limit {s.limits.max_latency_ms:g} ms" if s.limits.max_latency_ms is not None else ""
        print(f"  latency: {s.latency.settings.runtime}, {s.latency.settings.threads} thread(s), batch 1,"
              f" measured here before training, once per shape (latency.json){limit}")
    print(f"  folder {s.folder}   MLflow {(s.campaign.uri or 'disabled').split('?')[0]}"
          f" (experiment {s.cfg.mlflow.experiment})")


def _observed_trial_s(s: RunningSearch) -> tuple[float, int] | None:
    """Mean wall seconds of this search's trained trials, once it has a few: a better guide than a
    random sample, as a model-based sampler moves towards the front's larger nets."""
    spans = [t.duration.total_seconds() for t in s.study.get_trials(deepcopy=False, states=TRAINED_STATES)
             if t.duration is not None and not status_of(t, s.closed)[0].untrained]
    return (sum(spans) / len(spans), len(spans)) if len(spans) >= OBSERVED_TRIALS else None


def _estimate_line(s: RunningSearch, remaining: int, workers: Any) -> TimeModel | None:
    """Measured: this search's own trials, else the time model calibrated here by steps of its first
    points side by side, over the points it is expected to train. Returns that model, or None."""
    observed = _observed_trial_s(s)
    if observed is not None:
        per_trial, count = observed
        print(f"  estimated time: {estimate.describe(per_trial * remaining / max(workers.concurrency, 1))}"
              f" (this search's {count} trials so far: {per_trial:.0f} s each, {workers.concurrency} at a time)")
        return None
    if workers.kind != "cpu" or not remaining:
        return None
    expected = expected_points(s, workers.concurrency)
    planned = list(expected.planned[:remaining])
    if not planned and not expected.pool:
        return None
    threads = max(1, int(s.settings.cpus_per_point))
    side = estimate.side_by_side(workers.concurrency, threads)
    model = estimate.calibrate(estimate.spread(planned or list(expected.pool), side),
                               s.cfg.train, threads=threads)
    epochs = estimate.mean_epochs(s.budget, early_stopping=s.scheduler != "none")
    work = lambda points: [Work(cost, s.schedule, epochs) for _, cost in points]  # noqa: E731
    rest = remaining - len(planned) if expected.pool else 0
    total = estimate.estimate_s(work(planned), model, workers.concurrency, "search",
                                more=rest, like=work(expected.pool), drift=expected.drift)
    print(f"  estimated time: {estimate.describe(total)} ({len(planned)} first trials as they will be"
          f" sampled, {rest} more at {expected.drift:g}x the space's mean;"
          f" {total * workers.concurrency / remaining:.0f} s per trial measured here, {workers.concurrency} at a time)")
    return model


def search(settings: SearchSettings) -> SearchOutcome:
    started = time.perf_counter()
    with setup_guard():
        s = _setup(settings, started)
    try:
        return _search(s)
    finally:
        release(s.folder)


def _search(s: RunningSearch) -> SearchOutcome:
    killed = _start_records(s)
    accelerator, share = s.settings.accelerator_share()
    workers = plan_workers(init_ray(s.settings.address), accelerator=accelerator, share=share,
                           cpus_each=s.settings.cpus_per_point, concurrency=s.settings.concurrency)
    setup = TrialSetup(s.cfg, workers.kind, max(1, int(s.settings.cpus_per_point)))
    remaining = max(0, s.plan.trials - trained_count(s))
    _plan_line(s, remaining, killed, workers)
    s.time_model = _estimate_line(s, remaining, workers)
    interrupted = run_tuner(s, workers, setup)
    outcome = _results(s)
    outcome.interrupted = interrupted
    if s.plan.retrain_top:
        from nas.search.retrain import retrain_front

        outcome.retrained = retrain_front(outcome, s.settings, s.campaign)
    s.campaign.parent.end(Status.COMPLETED.mlflow_terminal)
    return outcome


def _results(s: RunningSearch) -> SearchOutcome:
    df = trials_frame(s.study, s.objectives, s.recorder.run_ids, s.closed)
    front = mark_front(df, s.objectives) if len(df) else df
    csv = s.folder / "trials.csv"
    df.to_csv(csv, index=False)
    write_front(front, s.folder, s.name, s.to_spec, s.campaign)
    s.campaign.parent.log_artifact(csv)
    if len(df) and (df["status"] == Status.COMPLETED.value).any():  # the figure `nas pareto` draws from MLflow
        s.campaign.parent.log_artifact(plot_front(df, s.objectives, out=s.folder / "pareto.png",
                                                  presets=reference_points(df), title=search_title(s.name)))
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    wall = time.perf_counter() - s.started
    s.campaign.parent.log_metrics({f"trials_{k.lower()}": v for k, v in counts.items()} |
                                  {"front_size": len(front), ml.WALL_TIME_S: wall})
    return SearchOutcome(s.name, s.folder, df, front, s.campaign.parent.run_id, wall, s.objectives)
