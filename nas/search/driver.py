"""`nas search`: sample architectures with Optuna, run them as Ray Tune trials with ASHA,
record everything in MLflow from this process, and report the Pareto front.

Durable state of a search lives in `<output_dir>/<name>/`: `optuna.db` (the study: every
sampled architecture and its outcome, the sampler's history), `search.json` (settings and the
MLflow parent run id), and the results (`trials.csv`, `pareto.png`, `front/*.yaml`).
`--resume` reopens the study, closes what a kill left RUNNING, and runs the remaining trials.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from ray.tune.error import TuneError

from nas.checkpoint import read_json, write_json_atomic
from nas.config import RunConfig, load_run_config
from nas.data import load_data
from nas.errors import NasError
from nas.pareto import Objective, format_front, parse_objectives, pareto_mask, plot_front, reference_points
from nas.search.budget import Budget, get_budget
from nas.search.executor import init_ray, plan_workers
from nas.search.recorder import RecorderCallback, SearchRecorder
from nas.search.searcher import SAMPLERS, Limits, OptunaSearcher
from nas.search.trial import TrialSetup, run_trial
from nas.space import load_space
from nas.spec import spec_to_yaml
from nas.tracking import Tracker, environment_tags, preflight

FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                   optuna.trial.TrialState.FAIL)


SEARCH_OBJECTIVES = ("val_acc", "macs", "params", "latency_ms")
CPU_IMG_PER_S = 160.0  # ShuffleNet trial on one core incl. evaluation (measured on 2 cores)
GPU_IMG_PER_S = 4000.0
TUNER_RESTARTS = 3  # Tune runs again for the remaining trials after a worker loss aborted it


@dataclass
class SearchSettings:
    space: str
    trials: int = 50
    name: str | None = None
    resume: bool = False
    objectives: str = "val_acc,macs"
    sampler: str = "nsga2"
    seed: int = 0
    budget: str | None = None  # None: gpu when a GPU is visible, else cpu
    max_macs: float | None = None
    max_params: float | None = None
    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: GPU_SHARE when the cluster has GPUs, else 0
    concurrency: int | None = None
    asha: bool = True
    retrain_top: int = 0
    output_dir: str = "searches"
    overrides: list[str] = field(default_factory=list)  # nas run keys: data.root=..., device=...
    progress: bool = True
    references: bool = True  # evaluate the space's reference points (paper nets) first


@dataclass
class SearchOutcome:
    name: str
    folder: Path
    trials: pd.DataFrame
    front: pd.DataFrame
    parent_run_id: str | None
    wall_s: float
    retrained: pd.DataFrame | None = None


def _run_config(settings: SearchSettings, budget: Budget) -> RunConfig:
    base = {"data": {"train_subset": budget.train_subset, "val_size": budget.val_size},
            "train": {"epochs": budget.epochs, "batch_size": budget.batch_size},
            "progress": False}
    return load_run_config(settings.overrides, base=base)


def _check_settings(settings: SearchSettings) -> None:
    if settings.trials < 1:
        raise NasError(f"--trials {settings.trials} must be >= 1")
    if settings.sampler not in SAMPLERS:
        raise NasError(f"--sampler {settings.sampler!r} must be one of {', '.join(SAMPLERS)}")
    if settings.cpus_per_trial <= 0 or (settings.gpus_per_trial or 0) < 0:
        raise NasError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")


def _study(folder: Path, name: str, objectives: list[Objective], settings: SearchSettings,
           resume: bool, planned_trials: int) -> optuna.Study:
    """The durable study; `planned_trials` is the first run's --trials, so a resumed NSGA-II
    keeps its population size."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}",
                                         engine_kwargs={"connect_args": {"timeout": 60}})
    directions = ["maximize" if o.direction == "max" else "minimize" for o in objectives]
    return optuna.create_study(study_name=name, storage=storage, directions=directions,
                               sampler=SAMPLERS[settings.sampler](settings.seed, planned_trials),
                               load_if_exists=resume)


def _close_running_trials(study: optuna.Study, nas_status: str, error: str | None = None) -> list[int]:
    """Trials left RUNNING by a kill (`KILLED`: not counted, so re-sampled) or by a Tune stop
    (`FAILED` with `error`): FAIL them so the sampler's history stays whole; their numbers."""
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING]
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "nas_status", nas_status)
        if error is not None:
            study._storage.set_trial_user_attr(t._trial_id, "error", error[:2000])
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
    return [t.number for t in stale]


def _trained_count(study: optuna.Study) -> int:
    """Trials that ran (completed, pruned or failed while training): infeasible ones are free."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED_STATES)
               if t.user_attrs.get("nas_status") not in ("INFEASIBLE", "DUPLICATE", "KILLED"))


def trials_frame(study: optuna.Study, objectives: list[Objective], run_ids: dict[int, str]) -> pd.DataFrame:
    """One row per trial: status, objectives, choices, MLflow run id (pandas-readable CSV)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        status = t.user_attrs.get("nas_status", {optuna.trial.TrialState.RUNNING: "RUNNING"}.get(t.state, "FAILED"))
        row: dict[str, Any] = {"trial": t.number, "status": status,
                               "macs": t.user_attrs.get("macs"), "params": t.user_attrs.get("params"),
                               "val_acc": t.user_attrs.get("val_acc"), "epochs": t.user_attrs.get("epochs"),
                               "error": t.user_attrs.get("error", ""),
                               "reference": t.user_attrs.get("reference", ""),
                               "node": t.user_attrs.get("node", ""),
                               "duplicate_of": t.user_attrs.get("duplicate_of")}
        if status == "COMPLETED" and t.values is not None:
            row.update({o.name: v for o, v in zip(objectives, t.values)})
        row.update({f"choice.{k}": v for k, v in t.params.items()})
        row["mlflow_run_id"] = run_ids.get(t.number, "")
        rows.append(row)
    return pd.DataFrame(rows)


def _injected_faults() -> tuple[int, ...]:
    """$NAS_FAIL_TRIALS="2,5": those trial numbers raise inside the worker (fault-injection tests)."""
    raw = os.environ.get("NAS_FAIL_TRIALS", "")
    return tuple(int(v) for v in raw.split(",") if v.strip())


def _estimate(budget: Budget, trials: int, concurrency: int, img_per_s: float, asha: bool) -> float:
    mean_epochs = budget.epochs
    if asha:  # geometric rungs: a 1/rf share of trials reaches each next rung
        epochs, share, total, prev = budget.grace_epochs, 1.0, 0.0, 0
        while epochs < budget.epochs:
            total += share * (epochs - prev)
            prev, share, epochs = epochs, share / budget.reduction_factor, epochs * budget.reduction_factor
        mean_epochs = total + share * (budget.epochs - prev)
    images = (budget.train_subset or 45000) + budget.val_size / 3
    return trials * mean_epochs * images / max(img_per_s, 1e-9) / max(concurrency, 1)


def search(settings: SearchSettings) -> SearchOutcome:
    started = time.perf_counter()
    _check_settings(settings)
    import torch

    budget = get_budget(settings.budget or ("gpu" if torch.cuda.is_available() else "cpu"))
    cfg = _run_config(settings, budget)
    preflight(cfg.mlflow.tracking_uri, {"--output-dir": settings.output_dir})  # seconds, not hours in
    budget = replace(budget, epochs=cfg.train.epochs, grace_epochs=min(budget.grace_epochs, cfg.train.epochs))
    objectives = parse_objectives(settings.objectives)
    unsupported = [o.name for o in objectives if o.name not in SEARCH_OBJECTIVES]
    if unsupported:
        raise NasError(f"--objectives: {', '.join(unsupported)} cannot be searched on; use "
                       f"{', '.join(SEARCH_OBJECTIVES)} (val_acc is the validation split's accuracy)")
    space = load_space(settings.space)
    name = settings.name or f"{space.name}-{datetime.now():%Y%m%d-%H%M%S}"
    folder = Path(settings.output_dir) / name
    state_file = folder / "search.json"
    if state_file.exists() and not settings.resume:
        raise NasError(f"search {name!r} exists in {folder}; add --resume to continue it or pick another --name")
    if settings.resume and not state_file.exists():
        raise NasError(f"nothing to resume: {state_file} does not exist")
    folder.mkdir(parents=True, exist_ok=True)
    state = read_json(state_file) if settings.resume else {}

    limits = Limits(settings.max_macs if settings.max_macs is not None else budget.default_max_macs,
                    settings.max_params)
    data = load_data(cfg.data, "cpu")
    spec_overrides = {"resolution": cfg.resolution or data.resolution,
                      "num_classes": cfg.num_classes or data.num_classes,
                      "in_channels": cfg.in_channels or data.channels}
    to_spec = lambda params: space.to_spec(params, **spec_overrides)

    planned = int(state.get("settings", {}).get("trials", settings.trials))
    study = _study(folder, name, objectives, settings, settings.resume, planned)
    if settings.references and not settings.resume:
        for ref_name, point in space.references:
            study.enqueue_trial(point, user_attrs={"reference": ref_name})
    killed = len(_close_running_trials(study, "KILLED")) if settings.resume else 0
    done_before = _trained_count(study)
    remaining = max(0, settings.trials - done_before)

    parent = Tracker(cfg.mlflow.experiment, name, uri=cfg.mlflow.tracking_uri,
                     run_id=state.get("parent_run_id"))
    if not settings.resume:
        parent.log_params({"search": {**asdict(settings), "overrides": " ".join(settings.overrides)},
                           "budget": asdict(budget), "limits": asdict(limits),
                           "data_sizes": {k: data.describe()[k] for k in ("train", "val", "test")}})
        parent.set_tags({**environment_tags(), "nas.kind": "search", "nas.space": space.name,
                         "nas.objectives": settings.objectives,
                         "nas.selection_metric": "val_acc (validation split carved from train)"})
        if space.path:
            parent.log_artifact(space.path)
        state = {"parent_run_id": parent.run_id, "settings": asdict(settings)}
        write_json_atomic(state, state_file)
    recorder = SearchRecorder(parent, cfg.mlflow.experiment, cfg.mlflow.tracking_uri, name)
    finished_numbers = {t.number: t.user_attrs.get("nas_status", "FAILED")
                        for t in study.get_trials(deepcopy=False, states=FINISHED_STATES)}
    recorder.close_leftovers(finished_numbers)

    resources = init_ray(settings.address)
    workers = plan_workers(resources, settings.cpus_per_trial, settings.gpus_per_trial,
                           settings.concurrency, cfg.device)
    cpus, gpus, concurrency, device = workers.cpus, workers.gpus, workers.concurrency, workers.device
    per_trial = {"cpu": settings.cpus_per_trial, "gpu": workers.gpu_share}
    setup = TrialSetup(str(space.path or settings.space), spec_overrides, cfg.train, cfg.data, device,
                       max(1, int(settings.cpus_per_trial)), any(o.name == "latency_ms" for o in objectives),
                       _injected_faults())

    print(f"search {name}: space {space.name}, {remaining} trials to run"
          f" ({done_before} done before{', ' + str(killed) + ' killed ones re-sampled' if killed else ''}),"
          f" {concurrency} at a time on {int(cpus)} CPUs / {gpus:g} GPUs")
    print(f"  budget {budget.name}: {len(data.train)} train images, val {len(data.val)},"
          f" {cfg.train.epochs} epochs" + (f", ASHA from {budget.grace_epochs} epoch(s), keep 1/{budget.reduction_factor}"
                                       if settings.asha else "") +
          f"; objectives {settings.objectives}; limits {limits.max_macs or '-'} MACs, {limits.max_params or '-'} params")
    img_per_s = CPU_IMG_PER_S * settings.cpus_per_trial if device == "cpu" else GPU_IMG_PER_S
    print(f"  estimated time: {_estimate(budget, remaining, concurrency, img_per_s, settings.asha) / 60:.1f} min"
          f" (at ~{img_per_s:.0f} img/s per trial)")
    print(f"  folder {folder}   MLflow {parent.uri.split('?')[0]} (experiment {cfg.mlflow.experiment})")

    for attempt in range(TUNER_RESTARTS + 1):
        remaining = max(0, settings.trials - _trained_count(study))
        if not remaining:
            break
        try:
            _fit(settings, f"ray-{attempt}", study, space, objectives, to_spec, limits, budget,
                 remaining, concurrency, per_trial, setup, data, recorder, folder)
            break
        except (TuneError, RuntimeError, OSError) as err:  # e.g. Ray's memory monitor killed a worker
            reason = _last_line(err)
            message = f"worker lost: {reason}"
            lost = _close_running_trials(study, "FAILED", message)
            for number in lost:  # in MLflow too, so nothing stays RUNNING
                if number in recorder.run_ids:
                    recorder.finish(number, "FAILED", message[:2000])
            if attempt == TUNER_RESTARTS:
                raise NasError(f"Ray Tune stopped {attempt + 1} times; last: {reason}") from err
            print(f"\nRay Tune stopped ({reason[:200]}); {len(lost)} running trial(s) recorded FAILED,"
                  " continuing with the remaining trials")
    outcome = _results(study, objectives, recorder, parent, folder, name, to_spec, started)
    if settings.retrain_top:
        outcome.retrained = retrain_front(outcome, settings, parent, cfg.mlflow.experiment)
    parent.end("FINISHED")
    return outcome


def retrain_front(outcome: "SearchOutcome", settings: SearchSettings, parent: Tracker,
                  experiment: str) -> pd.DataFrame:
    """Retrain the K best front members from scratch at the full `nas run` budget and log the
    test accuracy beside the search-time validation accuracy: the number a paper reports."""
    from nas.run import run

    best = outcome.front.sort_values("val_acc", ascending=False).head(settings.retrain_top)
    rows = []
    for _, row in best.iterrows():
        number = int(row["trial"])
        path = outcome.folder / "front" / f"trial{number:03d}.yaml"
        print(f"retraining trial {number} at the full budget: nas run spec={path}")
        cfg = load_run_config([*settings.overrides, f"spec={path}", f"mlflow.experiment={experiment}",
                               f"mlflow.run_name={outcome.name}-retrain-t{number:03d}"])
        done = run(cfg, parent_run_id=parent.run_id,
                   tags={"nas.kind": "retrain", "nas.trial": str(number),
                         "nas.retrain_of": str(row["mlflow_run_id"])})
        retrained = {"retrain_val_acc": done.result.val_acc, "retrain_test_acc": done.test_acc,
                     "retrain_epochs": cfg.train.epochs}
        if row["mlflow_run_id"]:
            for key, value in retrained.items():
                if value is not None:
                    parent.client.log_metric(row["mlflow_run_id"], key, float(value))
        rows.append({"trial": number, "macs": row["macs"], "search_val_acc": row["val_acc"], **retrained})
    table = pd.DataFrame(rows)
    table.to_csv(outcome.folder / "retrained.csv", index=False)
    parent.log_artifact(outcome.folder / "retrained.csv")
    return table


def _last_line(err: BaseException) -> str:
    """Tune wraps a worker's traceback in its error text: its last line names the cause."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def _fit(settings, run_name, study, space, objectives, to_spec, limits, budget, remaining,
         concurrency, per_trial, setup, data, recorder, folder) -> None:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from tqdm.auto import tqdm

    bar = tqdm(total=remaining, desc="trials", unit="trial", disable=not settings.progress,
               dynamic_ncols=True)
    counts = {"COMPLETED": 0, "PRUNED": 0, "FAILED": 0, "INFEASIBLE": 0, "DUPLICATE": 0}
    live = {"running": 0}
    points: list[list[float]] = []  # objective values of completed trials, for the front size

    def show() -> None:
        front = int(pareto_mask(np.array(points), [o.direction for o in objectives]).sum()) if points else 0
        bar.set_postfix_str(f"running {live['running']} completed {counts['COMPLETED']} pruned"
                            f" {counts['PRUNED']} failed {counts['FAILED']} infeasible"
                            f" {counts['INFEASIBLE']} duplicate {counts['DUPLICATE']} front {front}")

    def on_start() -> None:
        live["running"] += 1
        show()

    def on_done(status: str, result: dict) -> None:
        counts[status] = counts.get(status, 0) + 1
        live["running"] = max(0, live["running"] - 1)
        if status == "COMPLETED":
            points.append([float(result.get(o.name, float("nan"))) for o in objectives])
        bar.update()
        show()

    def on_infeasible(sampled) -> None:
        recorder.infeasible(sampled)
        counts[sampled.status] += 1
        show()

    searcher = OptunaSearcher(study, space, objectives, to_spec, limits, budget.epochs, remaining,
                              on_infeasible)
    scheduler = (ASHAScheduler(time_attr="epoch", metric="val_acc", mode="max", max_t=budget.epochs,
                               grace_period=budget.grace_epochs, reduction_factor=budget.reduction_factor)
                 if settings.asha else FIFOScheduler())
    trainable = tune.with_resources(tune.with_parameters(run_trial, setup=setup, data=data), per_trial)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=-1,
                                    max_concurrent_trials=concurrency, reuse_actors=True),
        run_config=tune.RunConfig(
            name=run_name, storage_path=str((folder / "ray").resolve()), verbose=0,
            callbacks=[RecorderCallback(recorder, to_spec, budget.epochs, on_done, on_start)],
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    try:
        tuner.fit()
    finally:
        bar.close()


def _results(study, objectives, recorder, parent, folder, name, to_spec, started) -> SearchOutcome:
    df = trials_frame(study, objectives, recorder.run_ids)
    completed = df[df["status"] == "COMPLETED"] if len(df) else df
    front = completed.iloc[0:0]
    if len(completed):
        values = completed[[o.name for o in objectives]].to_numpy(dtype=float)
        mask = pareto_mask(values, [o.direction for o in objectives])
        df["pareto"] = False
        df.loc[completed.index[mask], "pareto"] = True
        front = df[df["pareto"]].sort_values("macs")
    else:
        df["pareto"] = False
    csv = folder / "trials.csv"
    df.to_csv(csv, index=False)
    front_dir = folder / "front"
    front_dir.mkdir(exist_ok=True)
    for _, row in front.iterrows():
        params = {c[len("choice."):]: _plain(row[c]) for c in df.columns
                  if c.startswith("choice.") and not _missing(row[c])}
        spec = to_spec(params)
        path = front_dir / f"trial{int(row['trial']):03d}.yaml"
        path.write_text(spec_to_yaml(spec.replace(name=f"{name}-t{int(row['trial']):03d}")))
        if row["mlflow_run_id"]:
            parent.client.set_tag(row["mlflow_run_id"], "pareto", "true")
            parent.client.log_artifact(row["mlflow_run_id"], str(path))
    parent.log_artifact(csv)
    png = None
    if len(completed):
        shown = df[df["status"].isin(["COMPLETED", "PRUNED"])]
        refs = reference_points(df)
        png = plot_front(shown, x="macs", y="val_acc", front_mask=shown["pareto"].to_numpy(),
                         presets=None if refs is None else refs[["name", "macs", "val_acc"]],
                         title=f"{name}: validation accuracy vs MACs (same budget)",
                         out=folder / "pareto.png")
        parent.log_artifact(png)
    for path in front_dir.glob("*.yaml"):
        parent.log_artifact(path, "front")
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    parent.log_metrics({f"trials_{k.lower()}": v for k, v in counts.items()} |
                       {"front_size": len(front), "wall_time_s": time.perf_counter() - started})
    return SearchOutcome(name, folder, df, front, parent.run_id, time.perf_counter() - started)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """numpy scalars from pandas -> Python values for the spec."""
    return value.item() if hasattr(value, "item") else value


def front_table(outcome: SearchOutcome) -> str:
    return format_front(outcome.front, "spec",
                        [f"front/trial{int(t):03d}.yaml" for t in outcome.front["trial"]])
