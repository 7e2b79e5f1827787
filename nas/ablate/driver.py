"""`nas ablate`: an experiment's grid (cells x seeds) as Ray tasks, recorded in MLflow from this
process only, printed beside the paper. State: `<output_dir>/<name>/state.json` beside `results.csv`
and `summary.csv`; `--resume` skips finished points (FAILED ones too, unless `--retry-failed`),
reopens the MLflow runs a kill left RUNNING, and `--seeds N` grows the grid by the new seeds."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from nas import mlflow_layout as ml
from nas.ablate.experiment import Experiment, load_experiment
from nas.ablate.grid import CellRun, build_grid, check_overrides, resolve_data, run_config
from nas.ablate.cells import RunningAblation, run_cells, save_point
from nas.ablate.plan import AblatePlan
from nas.ablate.recorder import AblationRecorder
from nas.ablate.report import format_report, results_frame, summary_frame
from nas.campaign.budget import Budget, get_budget
from nas.campaign.lock import campaign_folder, setup_guard
from nas.campaign.lock import acquire, release
from nas.campaign.recorder import CampaignRecorder
from nas.campaign.resume import resumed_settings, started_settings
from nas.campaign.settings import CampaignSettings
from nas.campaign.state import State, open_state, stored_state
from nas.errors import NasError
from nas.job import JobResult
from nas.status import Status
from nas.tracking import preflight

DONE = (Status.COMPLETED, Status.INFEASIBLE, Status.FAILED)  # not re-run on --resume (FAILED is, with --retry-failed)
AblateSettings = CampaignSettings[AblatePlan]


@dataclass
class AblationOutcome:
    name: str
    folder: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    report: str
    parent_run_id: str | None
    wall_s: float


def pick_seeds(exp: Experiment, n: int | None) -> tuple[int, ...]:
    if n is None:
        return exp.seeds
    if n < 1:
        raise NasError(f"--seeds {n} must be >= 1")
    extra = [s for s in range(n + len(exp.seeds)) if s not in exp.seeds]  # the smallest unused
    return tuple([*exp.seeds, *extra][:n])


def _check(settings: AblateSettings) -> None:
    settings.check()
    plan = settings.plan
    if plan.test_images is not None and plan.test_images < 0:
        raise NasError(f"--test-images {plan.test_images} must be >= 0 (0: the whole test set)")
    if plan.retry_failed and not settings.resume:
        raise NasError("--retry-failed needs --resume (it reruns the FAILED cells of --name NAME)")


def _same_experiment(exp: Experiment, stored: dict[str, Any] | None, name: str) -> None:
    """`stored`: the state's `experiment` ({name, path}; None for a fresh ablation)."""
    if stored and stored.get("name") != exp.name:
        raise NasError(f"ablation {name!r} ran experiment {stored.get('name')}, not {exp.name};"
                       f" resume it with nas ablate {stored.get('path')} --name {name} --resume")


def _open(settings: AblateSettings, exp: Experiment, budget: Budget, name: str) -> State:
    folder = campaign_folder(settings.output_dir, name)
    acquire(folder, "ablation")
    state = open_state(folder, what="ablation", resume=settings.resume)
    state.data.setdefault("settings", settings.with_plan(budget=budget.name).stored())
    state.data.setdefault("experiment", {"name": exp.name, "path": str(exp.path)})
    return state


def _resumed(settings: AblateSettings, exp: Experiment, name: str) -> AblateSettings:
    """The settings a resumed ablation goes on with (those it started with, where kept)."""
    stored = stored_state(campaign_folder(settings.output_dir, name), what="ablation", resume=settings.resume)
    _same_experiment(exp, (stored or {}).get("experiment"), name)
    return resumed_settings(settings, started_settings(stored, AblatePlan), name=name)


def _setup(settings: AblateSettings, started: float) -> RunningAblation:
    _check(settings)
    exp = load_experiment(settings.plan.experiment)
    name = settings.name or f"{exp.name}-{datetime.now():%Y%m%d-%H%M%S}"
    settings = _resumed(settings, exp, name)
    plan, words = settings.plan, settings.run
    budget = get_budget("ablation", plan.budget or exp.budget)
    seeds = pick_seeds(exp, plan.seeds)
    check_overrides(exp, words)
    cfg = run_config(exp, budget, words)  # values that do not fit the experiment fail here, in one line
    preflight(cfg.mlflow.tracking_uri, {"--output-dir": settings.output_dir}, tracking=cfg.mlflow.enabled)
    state = _open(settings, exp, budget, name)
    data = resolve_data(exp, budget, words)
    grid = build_grid(exp, budget, words, seeds, data)
    test_images = budget.test_subset if plan.test_images is None else (plan.test_images or None)
    campaign = CampaignRecorder(run_config(exp, budget, words, data=data.extra).mlflow,
                                exp.name, state.data.get("parent_run_id"))
    return RunningAblation(settings, exp, budget, seeds, name, state, data, grid, test_images,
                           AblationRecorder(campaign, exp, name), started)


def _start_parent(a: RunningAblation) -> None:
    if "parent_run_id" in a.state.data:
        return
    a.campaign.start_parent(ml.KIND_ABLATION, {
        "ablation": {**a.settings.params(), "seeds": ",".join(map(str, a.seeds)),
                     "test_images": a.test_images or "all"},
        "budget": asdict(a.budget),
        "data_sizes": {k: a.first.describe()[k] for k in ("train", "val", "test")}},
        {ml.ABLATION: a.name, ml.EXPERIMENT: a.exp.name, ml.FACTORS: ",".join(f.name for f in a.exp.factors),
         ml.DATA: a.data.note, ml.BUDGET: a.budget.name, ml.PAPER: a.exp.paper.source if a.exp.paper else "",
         ml.TEST_SET: "reported once per cell, never used for selection"}, (Path(a.exp.path),))
    a.state.data.update({"parent_run_id": a.campaign.parent.run_id, "data": a.data.note})
    a.state.save()


def _adopt_orphans(a: RunningAblation) -> None:
    """After a kill between a child run's creation and the state file: the run the state does
    not know is adopted (reopened on re-run), or deleted when the state names another run."""
    for key, run_id in a.campaign.children_with_tag(ml.POINT):
        entry = a.state.points.get(key)
        if entry is None:
            a.state.points[key] = {"status": Status.RUNNING.value, "run_id": run_id}
        elif entry.get("run_id") != run_id:
            a.campaign.discard(run_id)
    a.state.save()


def _reconcile(a: RunningAblation) -> None:
    """After a kill: runs of finished points that MLflow still shows RUNNING get their result
    (the kill landed between the state file and MLflow); unfinished ones are reused on re-run."""
    _adopt_orphans(a)
    by_key = {p.key: p for p in a.grid}
    for key, entry in a.state.points.items():
        run_id, point = entry.get("run_id"), by_key.get(key)
        if not run_id or point is None or a.campaign.run_status(run_id) != ml.RUN_RUNNING:
            continue
        if Status(entry.get("status")) in DONE:
            a.recorder.child(point, run_id)
            a.recorder.finish(point, _result_from(entry))


def _result_from(entry: dict[str, Any]) -> JobResult:
    saved = dict(entry.get("result") or {})
    saved["status"] = Status(saved.get("status", entry["status"]))
    known = JobResult.__dataclass_fields__
    return JobResult(**{k: v for k, v in saved.items() if k in known})


def _record_infeasible(a: RunningAblation) -> None:
    """Cells that cannot build: one line each, recorded INFEASIBLE before any training."""
    for point in a.grid:
        if not point.valid and a.state.points.get(point.key, {}).get("status") != Status.INFEASIBLE:
            run_id = a.recorder.start(point)
            result = JobResult(Status.INFEASIBLE, error=point.error)
            save_point(a, point, result, run_id)
            a.recorder.finish(point, result)
    for label, error in {p.cell.label: p.error for p in a.grid if not p.valid}.items():
        print(f"invalid cell {label}: {error}")


def _todo(a: RunningAblation) -> list[CellRun]:
    done = tuple(s for s in DONE if not (a.settings.plan.retry_failed and s is Status.FAILED))
    todo = [p for p in a.grid if p.valid and a.state.points.get(p.key, {}).get("status") not in done]
    for point in todo:  # a retried failure gets a fresh run; the failed one is deleted
        entry = a.state.points.get(point.key, {})
        if entry.get("status") == Status.FAILED and entry.get("run_id"):
            a.campaign.discard(entry["run_id"])
            a.state.points.pop(point.key)
    a.state.save()
    return todo


def ablate(settings: AblateSettings) -> AblationOutcome:
    with setup_guard():
        a = _setup(settings, time.perf_counter())
    try:
        return _ablate(a)
    finally:
        release(a.state.folder)


def _ablate(a: RunningAblation) -> AblationOutcome:
    _start_parent(a)
    _reconcile(a)
    _record_infeasible(a)
    todo = _todo(a)
    n_cells = len(a.exp.cells())
    print(f"ablation {a.name}: {a.exp.name}, {n_cells} cells x {len(a.seeds)} seeds ({', '.join(map(str, a.seeds))}),"
          f" {len(todo)} to run" + (f", {len(a.grid) - len(todo)} done or invalid" if len(todo) < len(a.grid) else ""))
    cfg0 = todo[0].cfg if todo else next((p.cfg for p in a.grid if p.cfg), None)
    epochs = cfg0.train.epochs if cfg0 else a.budget.epochs
    print(f"  data {a.data.note}: {len(a.first.train)} train, {len(a.first.val)} val, {a.shown_test()} test images;"
          f" budget {a.budget.name}: {epochs} epoch(s), batch {cfg0.train.batch_size if cfg0 else a.budget.batch_size}")
    if todo:
        run_cells(a, todo)
    return _report(a, epochs)


def _report(a: RunningAblation, epochs: int) -> AblationOutcome:
    rows = [a.state.points[p.key]["row"] for p in a.grid if "row" in a.state.points.get(p.key, {})]
    results = results_frame(a.exp, rows)
    summary = summary_frame(a.exp, results, a.data.note)
    folder = a.state.folder
    results.to_csv(folder / "results.csv", index=False)
    summary.to_csv(folder / "summary.csv", index=False)
    caption = (f"data: {a.data.note}, {len(a.first.train)} train images, {epochs} epoch(s)"
               f" (budget {a.budget.name}); val = {len(a.first.val)} images carved from train; test ="
               f" {a.shown_test()} test images, once per cell; mean ± std over seeds {', '.join(map(str, a.seeds))}")
    report = format_report(a.exp, summary, n_seeds=len(a.seeds), caption=caption)
    counts = results["status"].value_counts().to_dict() if len(results) else {}
    wall = time.perf_counter() - a.started
    a.campaign.finish_parent((folder / "results.csv", folder / "summary.csv"),
                             {**{f"cells_{k.lower()}": v for k, v in counts.items()}, ml.WALL_TIME_S: wall})
    return AblationOutcome(a.name, folder, results, summary, report, a.campaign.parent.run_id, wall)
