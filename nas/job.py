"""The one job runner: train this spec with this config on this data and return a result, in
`nas run`'s process, a Tune worker or a Ray task alike. A job carries everything by value; every
failure (a NaN loss included) comes back as a `JobResult` with `Status.FAILED` and a one-line
`error`, never an exception, so one bad point never stops a campaign. Only the caller records."""

from __future__ import annotations

import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from nas import faults
from nas.builder import build_model
from nas.config import RunConfig
from nas.data import resize_bundle, to_device
from nas.device import configure_threads, select_device
from nas.errors import NasError
from nas.formats import choose
from nas.spec import NetSpec
from nas.status import Status
from nas.train import Report, evaluate, train



@dataclass(frozen=True)
class Job:
    """One point to train: picklable, small, and independent of the driver's disk."""

    spec: NetSpec  # checked once where it was built; pickles by value (frozen)
    cfg: RunConfig
    device: str | None = None  # None: cfg.device; a worker passes the device Ray assigned it
    threads: int | None = None  # CPU threads (None: cfg.train.threads)
    test: bool = True  # evaluate the test split once at the end (reporting only)
    point: str = ""  # the campaign point it trains: "trial 5", an ablation's "label@seed"


@dataclass
class JobResult:
    status: Status
    val_acc: float | None = None
    test_acc: float | None = None
    test_images: int = 0
    epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    device: str = "?"
    precision: str = ""  # nas.device.Precision.describe(): bf16 / fp32, +channels_last
    precision_source: str = ""  # nas.formats.FormatChoice.source: probe, cache, config, ...
    node: str = ""
    error: str = ""
    traceback: str = ""

    def metrics(self) -> dict[str, Any]:
        """Picklable summary for a worker to return."""
        return dict(self.__dict__)


@dataclass
class Outcome:
    """What `execute` hands an in-process caller (`nas run`) besides the result."""

    result: JobResult
    model: Any = None  # the evaluated weights (EMA when train.ema)


def one_line(err: BaseException) -> str:
    """A NasError is its message; anything else is prefixed with its type, as a traceback's last line."""
    text = str(err) if isinstance(err, NasError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split())[:2000]


def node_id() -> str:
    """The Ray node running this job (its hex id; the hostname outside Ray)."""
    ray = sys.modules.get("ray")  # importing Ray only to learn we are not in it costs a second
    try:
        if ray is not None and ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - not inside a Ray worker
        pass
    return socket.gethostname()


@dataclass
class RunFiles:
    """`nas run`'s checkpoint: `resume` continues it; `extra` is stored in it (MLflow run id)."""

    checkpoint: Path | None = None
    resume: bool = False
    extra: dict[str, Any] | Callable[[], dict[str, Any]] = field(default_factory=dict)  # a callable: read at each save


def run_folder(cfg: RunConfig, spec: NetSpec) -> Path:
    """`OUTPUT_DIR/<spec name>-<config hash>`: an in-process job's spec.yaml and checkpoint."""
    return Path(cfg.output_dir) / f"{spec.name}-{cfg.run_key()}"


def execute(job: Job, data: Any, report: Report | None = None, *, files: RunFiles | None = None,
            progress: bool = False) -> Outcome:
    """Train `job` on `data` (a DataBundle, on any device) and test it once; `report(metrics)` runs
    after every epoch and may raise a BaseException to stop the job (passed through untouched)."""
    started = time.perf_counter()
    result = JobResult(Status.FAILED, node=node_id())
    try:
        return _train(job, data, report, files=files or RunFiles(), progress=progress, result=result,
                      started=started)
    except Exception as err:  # recorded FAILED by the caller; the campaign goes on
        result.error, result.traceback = one_line(err), traceback.format_exc()[-4000:]
        result.wall_s = time.perf_counter() - started
        return Outcome(result)


def _train(job: Job, data: Any, report: Report | None, *, files: RunFiles, progress: bool,
           result: JobResult, started: float) -> Outcome:
    cfg = job.cfg
    device = select_device(job.device or cfg.device)
    result.device = str(device)
    if device.type == "cpu":
        configure_threads(job.threads if job.threads is not None else cfg.train.threads)
    fault = faults.injected(job.point)  # the one fault-injection hook (tests set it, nas.faults)
    if fault:
        raise RuntimeError(fault)
    bundle = to_device(data, device)
    if cfg.data.resize:
        bundle = resize_bundle(bundle, cfg.data.resize)
    planned_steps = cfg.train.epochs * max(1, len(bundle.train) // cfg.train.batch_size)
    choice = choose(job.spec, device, cfg.train, planned_steps)
    precision, result.precision_source = choice.precision, choice.source
    result.precision = precision.describe()
    if progress:
        print(f"format {choice.describe()}", flush=True)
    torch.manual_seed(cfg.train.seed)
    model = build_model(job.spec).to(device)
    fixed: dict[str, Any] = {"node": result.node, "device": result.device, "precision": result.precision}

    def on_epoch(metrics: dict[str, Any]) -> None:
        result.history.append(dict(metrics))
        if report is not None:
            report({**metrics, **fixed})

    trained = train(model, bundle, cfg.train, on_epoch, data_cfg=cfg.data, precision=precision,
                    checkpoint_path=files.checkpoint, resume=files.resume,
                    extra_state=files.extra, progress=progress)
    result.history = trained.history  # on resume: the epochs before the interruption too
    result.val_acc, result.epochs = trained.val_acc, len(trained.history)
    if job.test:
        result.test_acc = evaluate(trained.model, bundle.test, bundle, cfg.train.eval_batch_size,
                                   precision)
        result.test_images = len(bundle.test)
    result.status, result.wall_s = Status.COMPLETED, time.perf_counter() - started
    return Outcome(result, trained.model)
