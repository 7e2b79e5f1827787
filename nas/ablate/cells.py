"""An ablation being run (`RunningAblation`, what every step after the set-up reads) and its points
on Ray: each cell x seed is one Ray task running its Job; the driver alone records the results."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from typing import Any

import ray

from nas.ablate.experiment import Experiment
from nas.ablate.grid import CellRun, ResolvedData, load_key
from nas.ablate.plan import AblatePlan
from nas.ablate.recorder import AblationRecorder
from nas.ablate.report import result_row
from nas.campaign import estimate
from nas.campaign.budget import Budget
from nas.campaign.progress import Progress
from nas.campaign.recorder import CampaignRecorder
from nas.campaign.settings import CampaignSettings
from nas.campaign.state import State
from nas.campaign.tasks import run_tasks
from nas.campaign.time_model import Schedule, Work
from nas.counting import count
from nas.data import DataBundle, Split, split_indices
from nas.job import Job, JobResult, execute, node_id, one_line
from nas.status import Status
from nas.workers import init_ray, plan_workers, worker_device

TEST_SUBSET_SEED = 0x7E57  # fixed: every cell and seed is tested on the same images


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


def with_test_subset(data: DataBundle, n: int | None) -> DataBundle:
    """A fixed, class-balanced subset of the test split (None: all), chosen once by the driver so
    workers neither receive nor resize the rest."""
    if n is None or n >= len(data.test):
        return data
    _, idx = split_indices(data.test.labels.cpu(), n, None, TEST_SUBSET_SEED, data.num_classes)
    idx = idx.to(data.test.images.device)
    test = Split(data.test.images.index_select(0, idx), data.test.labels.index_select(0, idx))
    return dataclasses.replace(data, test=test)


def run_cell(job: Job, data: DataBundle, kind: str) -> JobResult:
    """Inside the Ray task: the device Ray assigned, then the job."""
    try:
        job = dataclasses.replace(job, device=worker_device(kind))
    except Exception as err:  # noqa: BLE001 - e.g. torch_npu missing on this node
        return JobResult(Status.FAILED, node=node_id(), error=one_line(err))
    return execute(job, data).result


def _estimate_line(a: RunningAblation, todo: list[CellRun], workers: Any, threads: int) -> str:
    """The campaign estimate, calibrated on this ablation's cells trained side by side here."""
    if workers.kind != "cpu":
        return ""
    costed = [(p.spec, count(p.spec).cost) for p in todo]
    side = estimate.side_by_side(workers.concurrency, threads)
    model = estimate.calibrate(estimate.spread(costed, side), todo[0].cfg.train, threads=threads)
    work = []
    for p, (_, cost) in zip(todo, costed):
        bundle = a.data.bundles[load_key(p.cfg)]
        n_test = min(a.test_images or len(bundle.test), len(bundle.test))
        schedule = Schedule(len(bundle.train), len(bundle.val), p.cfg.train.batch_size, n_test)
        work.append(Work(cost, schedule, p.cfg.train.epochs))
    seconds = estimate.estimate_s(work, model, workers.concurrency, "ablation")
    return f"; estimated {estimate.describe(seconds)} (measured here)"


def _line(point: CellRun, result: JobResult) -> str:
    if result.status is not Status.COMPLETED:
        return f"  FAILED    {point.cell.label} seed {point.seed}: {result.error}"
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    return (f"  completed {point.cell.label} seed {point.seed}: val {pct(result.val_acc)}"
            f" test {pct(result.test_acc)} in {result.wall_s:.0f}s")


def run_cells(a: RunningAblation, todo: list[CellRun]) -> None:
    accelerator, share = a.settings.accelerator_share()
    workers = plan_workers(init_ray(a.settings.address), accelerator=accelerator, share=share,
                           cpus_each=a.settings.cpus_per_point, concurrency=a.settings.concurrency)
    threads = max(1, int(a.settings.cpus_per_point))
    print(f"  {workers.describe()}{_estimate_line(a, todo, workers, threads)}")
    print(f"  folder {a.state.folder}   MLflow {(a.campaign.uri or 'disabled').split('?')[0]}")
    refs = {key: ray.put(with_test_subset(bundle, a.test_images)) for key, bundle in a.data.bundles.items()}
    task = ray.remote(run_cell).options(**workers.task_options(), max_retries=1)
    bar = Progress(len(todo), a.exp.name, enabled=a.settings.progress, unit="run")

    def submit(point: CellRun) -> Any:
        run_id = a.recorder.start(point, a.state.points.get(point.key, {}).get("run_id"))
        a.state.points[point.key] = {"status": Status.RUNNING.value, "run_id": run_id}
        a.state.save()
        job = Job(point.spec, point.cfg, threads=threads, point=point.key)
        ref = task.remote(job, refs[load_key(point.cfg)], workers.kind)
        bar.started()
        return ref

    def on_done(point: CellRun, result: JobResult) -> None:
        _record(a, point, result)
        bar.done(result.status, _line(point, result))

    try:
        run_tasks(todo, submit, workers.concurrency, on_done)
    except KeyboardInterrupt:
        for record in a.state.points.values():  # run_tasks cancelled them; --resume runs them again
            if record.get("status") == Status.RUNNING.value:
                record["status"] = Status.INTERRUPTED.value
        a.state.save()
        a.campaign.kill_open()
        a.campaign.parent.end(Status.INTERRUPTED.mlflow_terminal, None)
        print(f"\ninterrupted; continue with: nas ablate {shlex.quote(str(a.exp.path))}"
              f" --name {shlex.quote(a.state.folder.name)} --resume")
        raise
    finally:
        bar.close()


def _record(a: RunningAblation, point: CellRun, result: JobResult) -> None:
    """State file first (the local truth), then MLflow: the driver's reconcile mends a kill between."""
    if result.traceback:
        with open(a.state.folder / "errors.log", "a") as log:
            log.write(f"--- {point.key}\n{result.traceback}\n")
    save_point(a, point, result, a.state.points.get(point.key, {}).get("run_id"))
    a.recorder.finish(point, result)


def save_point(a: RunningAblation, point: CellRun, result: JobResult, run_id: str | None) -> None:
    """A finished point in the state file (its result and its results.csv row), atomically."""
    kept = {k: v for k, v in result.metrics().items() if k != "traceback"}
    kept["status"] = result.status.value
    a.state.points[point.key] = {"status": result.status.value, "run_id": run_id, "result": kept,
                                 "row": result_row(a.exp, point, kept, run_id)}
    a.state.save()
