"""`nas run`: one Job executed in this process, recorded in MLflow as it trains. Its checkpoint in
`OUTPUT_DIR/<spec name>-<config hash>` holds the MLflow run id, so `resume=true` continues that run."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas import checkpoint
from nas import mlflow_layout as ml
from nas.config import RunConfig, resolve_spec, run_params
from nas.counting import count
from nas.data import load_data
from nas.device import select_device
from nas.errors import NasError
from nas.job import Job, JobResult, RunFiles, execute, run_folder
from nas.spec import spec_to_yaml
from nas.status import Status
from nas.table import format_table
from nas.tracking import NullTracker, Tracker, environment_tags, preflight


@dataclass
class RunOutcome:
    spec: Any  # NetSpec
    counted: Any  # Count
    result: JobResult
    run_id: str | None
    run_dir: Path
    wall_s: float
    model: Any = None
    val_images: int | None = None  # the validation split's size (data.val_size, or its default)


def _tracker(cfg: RunConfig, spec: Any, previous_run_id: str | None) -> Tracker | NullTracker:
    if not cfg.mlflow.enabled:
        return NullTracker()
    return Tracker(cfg.mlflow.experiment, cfg.mlflow.run_name or spec.name, uri=cfg.mlflow.tracking_uri,
                   run_id=previous_run_id)


def _describe_run(tracker: Tracker | NullTracker, cfg: RunConfig, data: Any, *, spec: Any,
                  counted: Any, device: str) -> None:
    tracker.log_params(run_params(cfg, data))
    tracker.set_tags({**environment_tags(), ml.DEVICE: device, ml.KIND: ml.KIND_RUN,
                      ml.SELECTION_METRIC: ml.VAL_ACC, ml.TEST_SET: ml.TEST_SET_ONCE, ml.SPEC: spec.name})
    tracker.log_text(spec_to_yaml(spec), "spec.yaml")
    tracker.log_metrics({ml.PARAMS: counted.params, ml.MACS: counted.macs})


def run(cfg: RunConfig) -> RunOutcome:
    """Train one network as configured; MLflow records it FINISHED or FAILED with the error."""
    started = time.perf_counter()
    resolve_spec(cfg)  # refuse a bad spec and bad settings before torch, devices, data or files
    preflight(cfg.mlflow.tracking_uri, {"output_dir": cfg.output_dir}, tracking=cfg.mlflow.enabled)
    device = select_device(cfg.device)
    data = load_data(cfg.data, device)
    spec = resolve_spec(cfg, data)
    counted = count(spec)
    run_dir = run_folder(cfg, spec)
    ckpt = run_dir / "checkpoint.pt"
    previous_run_id = None
    if cfg.resume and ckpt.exists():
        previous_run_id = checkpoint.load(ckpt).get("extra", {}).get("mlflow_run_id")
    elif ckpt.exists():
        ckpt.unlink()  # a fresh run with the same config starts over
    tracker = _tracker(cfg, spec, previous_run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.yaml").write_text(spec_to_yaml(spec))
    try:
        if previous_run_id is None:
            _describe_run(tracker, cfg, data, spec=spec, counted=counted, device=str(device))
        job = Job(spec, cfg, device=str(device))
        report = lambda m: tracker.log_metrics({k: m[k] for k in ml.EPOCH_METRICS}, step=m["epoch"])
        # a callable: training starts while MLflow opens the run, the id is read at each checkpoint
        files = RunFiles(ckpt, cfg.resume, lambda: {"mlflow_run_id": tracker.run_id})
        outcome = execute(job, data, report, files=files, progress=cfg.progress)
    except KeyboardInterrupt:
        tracker.end(Status.KILLED.mlflow_terminal, "interrupted; continue with resume=true")
        raise
    result = outcome.result
    wall = time.perf_counter() - started
    if result.status is not Status.COMPLETED:
        if result.traceback:
            tracker.log_text(result.traceback, "traceback.txt")
        tracker.end(Status.FAILED.mlflow_terminal, result.error)
        raise NasError(result.error)
    tracker.set_tags({ml.PRECISION: result.precision})
    tracker.log_metrics({ml.VAL_ACC: result.val_acc, ml.TEST_ACC: result.test_acc, ml.WALL_TIME_S: wall,
                         ml.PARAMS: counted.params, ml.MACS: counted.macs}, step=cfg.train.epochs)
    tracker.end(Status.COMPLETED.mlflow_terminal)
    return RunOutcome(spec, counted, result, tracker.run_id, run_dir, wall, outcome.model, len(data.val))


def summary_table(outcome: RunOutcome, cfg: RunConfig) -> str:
    last = outcome.result.history[-1] if outcome.result.history else {}
    fmt = lambda v: "-" if v is None else f"{v:.4f}"
    rows = [
        ["model", f"{outcome.spec.name} (width {outcome.spec.width}, {outcome.spec.input.resolution}px)"],
        ["params / MACs", f"{outcome.counted.params:,} / {outcome.counted.macs / 1e6:.1f}M"],
        ["data", f"{cfg.data.name}: val {outcome.val_images} carved from train, seed {cfg.data.split_seed}"],
        ["epochs / seed", f"{cfg.train.epochs} / {cfg.train.seed}"],
        ["val_acc (selection)", fmt(outcome.result.val_acc)],
        ["test_acc (report only)", fmt(outcome.result.test_acc)],
        ["last train_loss", fmt(last.get("train_loss"))],
        ["throughput", f"{last.get('img_per_s', 0):.0f} img/s on {outcome.result.device}"
                        f" ({outcome.result.precision}, {outcome.result.precision_source})"],
        ["wall time", f"{outcome.wall_s:.1f}s"],
        ["checkpoint", str(outcome.run_dir / "checkpoint.pt")],
        ["mlflow run", outcome.run_id or "disabled"],
    ]
    return format_table(["", ""], rows, align="ll")
