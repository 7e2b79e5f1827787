"""`nas ablate`: run an experiment's grid (cells x seeds) as Ray tasks, record it in MLflow from
this process only, and print the table beside the paper's numbers.

Durable state lives in `<output_dir>/<name>/state.json` (written atomically after every event:
the MLflow run ids and each finished unit's result) next to `results.csv` and `summary.csv`.
`--resume` skips units that finished (COMPLETED, FAILED, or INVALID: those never train; with
`--retry-failed` FAILED ones run again), reopens the MLflow runs a kill left RUNNING, and runs
the rest.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from nas.ablate.budget import CPU_EVAL_MACS_PER_S, CPU_TRAIN_MACS_PER_S, Budget, get_budget
from nas.ablate.experiment import Experiment, load_experiment
from nas.ablate.recorder import AblationRecorder
from nas.ablate.report import format_report, result_row, results_frame, summary_frame
from nas.ablate.units import ResolvedData, Unit, build_units, check_overrides, load_key, resolve_data, run_config
from nas.checkpoint import read_json, write_json_atomic
from nas.errors import NasError
from nas.tracking import preflight

DONE = ("COMPLETED", "INVALID", "FAILED")  # not re-run on --resume (FAILED is, with --retry-failed)


@dataclass
class AblateSettings:
    experiment: str  # experiments/NAME.yaml, a path, or a bare NAME
    seeds: int | None = None  # None: the file's seeds; N: the first N (extended 0, 1, 2, ...)
    budget: str | None = None  # None: the file's budget
    name: str | None = None
    resume: bool = False
    address: str | None = None
    cpus_per_cell: float = 1.0
    gpus_per_cell: float | None = None  # None: GPU_SHARE when the cluster has GPUs, else 0
    concurrency: int | None = None
    test_images: int | None = None  # None: the budget's; 0: the whole test set
    output_dir: str = "ablations"
    overrides: list[str] = field(default_factory=list)  # nas run keys: data.root=..., train.lr=...
    progress: bool = True
    retry_failed: bool = False  # with --resume: run FAILED units again (their old runs are deleted)


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
    seeds = list(exp.seeds[:n])
    extra = (s for s in range(10_000) if s not in exp.seeds)
    while len(seeds) < n:
        seeds.append(next(extra))
    return tuple(seeds)


def injected_faults() -> set[str]:
    """$NAS_FAIL_CELLS="width=0.5,groups=3 shuffle=false@1": those cells (or cell@seed) raise
    inside the worker (fault-injection tests)."""
    return {v.strip() for v in os.environ.get("NAS_FAIL_CELLS", "").split(",") if v.strip()}


class State:
    """`state.json`: settings, the MLflow parent run id, and one entry per started unit."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path, self.data = path, data
        self.data.setdefault("units", {})

    @classmethod
    def load(cls, path: Path) -> "State":
        return cls(path, read_json(path))

    @property
    def units(self) -> dict[str, dict[str, Any]]:
        return self.data["units"]

    def save(self) -> None:
        write_json_atomic(self.data, self.path)


def _estimate_s(units: list[Unit], data: ResolvedData, test_images: int | None, concurrency: int) -> float:
    """Rough CPU time from MACs (see budget.py for the rates), spread over the workers."""
    total = 0.0
    for u in units:
        bundle = data.bundles[load_key(u.cfg)]
        n_test = min(test_images or len(bundle.test), len(bundle.test))
        epochs = u.cfg.train.epochs
        total += u.macs * (len(bundle.train) * epochs / CPU_TRAIN_MACS_PER_S
                           + (len(bundle.val) * epochs + n_test) / CPU_EVAL_MACS_PER_S)
    return total / max(concurrency, 1)


def _prepare(settings: AblateSettings) -> tuple[Experiment, Budget, tuple[int, ...], str, Path]:
    exp = load_experiment(settings.experiment)
    budget = get_budget(settings.budget or exp.budget)
    seeds = pick_seeds(exp, settings.seeds)
    if settings.cpus_per_cell <= 0 or (settings.gpus_per_cell or 0) < 0:
        raise NasError("--cpus-per-cell must be > 0 and --gpus-per-cell >= 0")
    if settings.concurrency is not None and settings.concurrency < 1:
        raise NasError(f"--concurrency {settings.concurrency} must be >= 1")
    if settings.test_images is not None and settings.test_images < 0:
        raise NasError(f"--test-images {settings.test_images} must be >= 0 (0: the whole test set)")
    check_overrides(exp, settings.overrides)
    cfg = run_config(exp, budget, settings.overrides)  # unknown keys and bad values fail here, in one line
    preflight(cfg.mlflow.tracking_uri, {"--output-dir": settings.output_dir}, tracking=cfg.mlflow.enabled)
    if settings.resume and not settings.name:
        raise NasError("--resume needs --name NAME (the ablation to continue; see ablations/)")
    name = settings.name or f"{exp.name}-{datetime.now():%Y%m%d-%H%M%S}"
    return exp, budget, seeds, name, Path(settings.output_dir) / name


def _open_state(settings: AblateSettings, exp: Experiment, budget: Budget, name: str, folder: Path) -> State:
    path = folder / "state.json"
    if path.exists() and not settings.resume:
        raise NasError(f"ablation {name!r} exists in {folder}; add --resume to continue it or pick another --name")
    if settings.resume:
        if not path.exists():
            raise NasError(f"nothing to resume: {path} does not exist")
        state = State.load(path)
        was = state.data.get("settings", {})
        if was.get("budget") != budget.name or was.get("overrides") != list(settings.overrides) \
                or was.get("experiment_name") != exp.name:
            raise NasError(f"ablation {name!r} ran experiment {was.get('experiment_name')} at budget "
                           f"{was.get('budget')} with overrides {was.get('overrides')}; resume it with "
                           f"the same experiment, --budget and key=value words")
        return state
    folder.mkdir(parents=True, exist_ok=True)
    return State(path, {"settings": {**asdict(settings), "budget": budget.name,
                                     "experiment_name": exp.name, "experiment_path": str(exp.path)}})


def ablate(settings: AblateSettings) -> AblationOutcome:
    started = time.perf_counter()
    exp, budget, seeds, name, folder = _prepare(settings)
    state = _open_state(settings, exp, budget, name, folder)
    data = resolve_data(exp, budget, settings.overrides)
    units = build_units(exp, budget, settings.overrides, seeds, data)
    cfg0 = run_config(exp, budget, settings.overrides, data=data.extra)
    test_images = budget.test_subset if settings.test_images is None else (settings.test_images or None)

    recorder = AblationRecorder(cfg0.mlflow, exp, name, state.data.get("parent_run_id"))
    if "parent_run_id" not in state.data:
        first = next(iter(data.bundles.values()))
        recorder.start_parent(
            {"ablation": {**asdict(settings), "overrides": " ".join(settings.overrides),
                          "seeds": ",".join(map(str, seeds)), "test_images": test_images or "all"},
             "budget": asdict(budget),
             "data_sizes": {k: first.describe()[k] for k in ("train", "val", "test")}},
            {"nas.data": data.note, "nas.budget": budget.name,
             "nas.paper": exp.paper.source if exp.paper else "",
             "nas.test_set": "reported once per cell, never used for selection"})
        state.data["parent_run_id"] = recorder.parent.run_id
        state.data["data"] = data.note
        state.save()
    _reconcile(recorder, state, units)

    for unit in units:  # bad cells: one line each, before any training
        if not unit.valid and state.units.get(unit.key, {}).get("status") != "INVALID":
            run_id = recorder.start(unit)
            result = {"status": "INVALID", "error": unit.error, "epochs": 0, "history": []}
            state.units[unit.key] = {"status": "INVALID", "run_id": run_id,
                                     "row": result_row(exp, unit, result, run_id)}
            state.save()
            recorder.finish(unit, result)
    invalid_cells = {u.cell.label: u.error for u in units if not u.valid}
    for label, error in invalid_cells.items():
        print(f"invalid cell {label}: {error}")

    done = tuple(s for s in DONE if not (settings.retry_failed and s == "FAILED"))
    todo = [u for u in units if u.valid and state.units.get(u.key, {}).get("status") not in done]
    for unit in todo:  # a retried failure gets a fresh run; the failed one is deleted
        entry = state.units.get(unit.key, {})
        if entry.get("status") == "FAILED" and entry.get("run_id"):
            recorder.discard(entry["run_id"])
            state.units.pop(unit.key)
    state.save()
    n_cells = len(exp.cells())
    print(f"ablation {name}: {exp.name}, {n_cells} cells x {len(seeds)} seeds ({', '.join(map(str, seeds))}),"
          f" {len(todo)} to run" + (f", {len(units) - len(todo)} done or invalid" if len(todo) < len(units) else ""))
    first = next(iter(data.bundles.values()))
    print(f"  data {data.note}: {len(first.train)} train, {len(first.val)} val, "
          f"{min(test_images or len(first.test), len(first.test))} test images;"
          f" budget {budget.name}: {cfg0.train.epochs} epoch(s), batch {cfg0.train.batch_size}")
    if todo:
        _run(settings, recorder, state, exp, todo, data, test_images)
    rows = [state.units[u.key]["row"] for u in units if "row" in state.units.get(u.key, {})]
    results = results_frame(exp, rows)
    summary = summary_frame(exp, results, data.note)
    results.to_csv(folder / "results.csv", index=False)
    summary.to_csv(folder / "summary.csv", index=False)
    caption = (f"data: {data.note}, {len(first.train)} train images, {cfg0.train.epochs} epoch(s)"
               f" (budget {budget.name}); val = {len(first.val)} images carved from train; test ="
               f" {min(test_images or len(first.test), len(first.test))} test images, once per cell;"
               f" mean ± std over seeds {', '.join(map(str, seeds))}")
    report = format_report(exp, summary, n_seeds=len(seeds), caption=caption)
    counts = results["status"].value_counts().to_dict() if len(results) else {}
    recorder.finish_parent([folder / "results.csv", folder / "summary.csv"],
                           {**{f"units_{k.lower()}": v for k, v in counts.items()},
                            "wall_time_s": time.perf_counter() - started})
    return AblationOutcome(name, folder, results, summary, report, recorder.parent.run_id,
                           time.perf_counter() - started)


def _reconcile(recorder: AblationRecorder, state: State, units: list[Unit]) -> None:
    """After a kill: runs of finished units that MLflow still shows RUNNING get their result
    (the kill landed between the state file and MLflow); unfinished ones are reused on re-run."""
    by_key = {u.key: u for u in units}
    for key, entry in state.units.items():
        run_id, unit = entry.get("run_id"), by_key.get(key)
        if not run_id or unit is None or recorder.run_status(run_id) != "RUNNING":
            continue
        if entry.get("status") in DONE:
            recorder.child(unit, run_id)
            recorder.finish(unit, entry.get("result") or {"status": entry["status"]})


def _run(settings: AblateSettings, recorder: AblationRecorder, state: State, exp: Experiment,
         todo: list[Unit], data: ResolvedData, test_images: int | None) -> None:
    import ray
    from tqdm.auto import tqdm

    from nas.ablate.worker import one_line, run_unit, with_test_subset
    from nas.search.executor import init_ray, plan_workers

    resources = init_ray(settings.address)
    workers = plan_workers(resources, settings.cpus_per_cell, settings.gpus_per_cell,
                           settings.concurrency, todo[0].cfg.device)
    cpus, gpus, concurrency, device = workers.cpus, workers.gpus, workers.concurrency, workers.device
    threads = max(1, int(settings.cpus_per_cell))
    estimate = ""
    if device == "cpu":
        estimate = f"; rough estimate {_estimate_s(todo, data, test_images, concurrency) / 60:.0f} min"
    print(f"  {concurrency} at a time on {int(cpus)} CPUs / {gpus:g} GPUs ({device}){estimate}")
    print(f"  folder {state.path.parent}   MLflow {(recorder.uri or 'disabled').split('?')[0]}")

    refs = {key: ray.put(with_test_subset(bundle, test_images)) for key, bundle in data.bundles.items()}
    task = ray.remote(run_unit).options(num_cpus=settings.cpus_per_cell,
                                        num_gpus=workers.gpu_share, max_retries=1)
    faults = injected_faults()
    queue, pending = list(todo), {}
    counts = {"COMPLETED": 0, "FAILED": 0}
    bar = tqdm(total=len(todo), desc=exp.name, unit="run", disable=not settings.progress,
               dynamic_ncols=True)

    def show() -> None:
        bar.set_postfix_str(f"running {len(pending)} completed {counts['COMPLETED']} failed {counts['FAILED']}")

    def submit(unit: Unit) -> None:
        entry = state.units.get(unit.key, {})
        run_id = recorder.start(unit, entry.get("run_id"))
        state.units[unit.key] = {"status": "RUNNING", "run_id": run_id}
        state.save()
        fail = (f"injected fault in cell {unit.cell.label} seed {unit.seed}"
                if unit.cell.label in faults or unit.key in faults else None)
        ref = task.remote(unit.cfg, unit.spec, refs[load_key(unit.cfg)], device=device,
                          threads=threads, fail=fail)
        pending[ref] = unit

    try:
        while queue or pending:
            while queue and len(pending) < concurrency:
                submit(queue.pop(0))
            show()
            ready, _ = ray.wait(list(pending), num_returns=1)
            unit = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except Exception as err:  # the worker process died (twice): record it, go on
                result = {"status": "FAILED", "error": "worker lost: " + one_line(err),
                          "epochs": 0, "history": []}
            _record(recorder, state, exp, unit, result)
            counts[result["status"]] = counts.get(result["status"], 0) + 1
            bar.update()
            show()
            tqdm.write(_line(unit, result))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        recorder.kill_open()
        recorder.parent.end("KILLED", None)
        print(f"\ninterrupted; continue with: nas ablate {exp.path} --name {state.path.parent.name} --resume")
        raise
    finally:
        bar.close()


def _record(recorder: AblationRecorder, state: State, exp: Experiment, unit: Unit,
            result: dict[str, Any]) -> None:
    """State file first (the local truth, atomic), then MLflow; `_reconcile` mends a kill between."""
    run_id = state.units.get(unit.key, {}).get("run_id")
    if result.get("traceback"):
        with open(state.path.parent / "errors.log", "a") as log:
            log.write(f"--- {unit.key}\n{result['traceback']}\n")
    kept = {k: v for k, v in result.items() if k != "traceback"}
    state.units[unit.key] = {"status": result["status"], "run_id": run_id, "result": kept,
                             "row": result_row(exp, unit, result, run_id)}
    state.save()
    recorder.finish(unit, kept)


def _line(unit: Unit, result: dict[str, Any]) -> str:
    if result["status"] != "COMPLETED":
        return f"  FAILED    {unit.cell.label} seed {unit.seed}: {result.get('error', '')}"
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    return (f"  completed {unit.cell.label} seed {unit.seed}: val {pct(result['val_acc'])}"
            f" test {pct(result['test_acc'])} in {result['wall_s']:.0f}s")
