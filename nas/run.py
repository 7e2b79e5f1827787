"""`nas run`: config -> data -> spec -> model -> train -> test once -> MLflow -> summary."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nas import checkpoint
from nas.builder import build_model
from nas.config import RunConfig
from nas.counting import Count, count
from nas.data import DataBundle, load_data
from nas.device import configure_threads, precision_for, select_device
from nas.errors import NasError
from nas.presets import load_preset
from nas.schema import to_dict
from nas.spec import NetSpec, load_spec, spec_to_yaml
from nas.table import format_table
from nas.tracking import NullTracker, Tracker, environment_tags, preflight
from nas.train import EPOCH_METRICS, TrainResult, check_config, evaluate, train


def resolve_spec(cfg: RunConfig, data: DataBundle | None = None) -> NetSpec:
    """The preset or spec file with the model overrides; sizes default to the data set's."""
    overrides: dict[str, Any] = dict(cfg.model)
    dims = {"width": cfg.width, "resolution": cfg.resolution, "num_classes": cfg.num_classes,
            "in_channels": cfg.in_channels}
    if data is not None:
        dims = {"resolution": cfg.resolution or data.resolution,
                "num_classes": cfg.num_classes or data.num_classes,
                "in_channels": cfg.in_channels or data.channels, "width": cfg.width}
    overrides.update({k: v for k, v in dims.items() if v is not None})
    if (cfg.preset is None) == (cfg.spec is None):
        raise NasError("give exactly one of preset=NAME or spec=PATH (see `nas presets`)")
    if cfg.preset is not None:
        return load_preset(cfg.preset, **overrides)
    return load_spec(cfg.spec, **overrides)


@dataclass
class RunOutcome:
    spec: NetSpec
    counted: Count
    result: TrainResult
    test_acc: float | None
    run_id: str | None
    run_dir: Path
    device: str
    wall_s: float


def _params(cfg: RunConfig, data: DataBundle) -> dict[str, Any]:
    params = to_dict(cfg)
    for key in ("resume", "progress"):
        params.pop(key)
    params["data_sizes"] = {k: data.describe()[k] for k in ("train", "val", "test")}
    return params


def run(cfg: RunConfig, *, tags: dict[str, str] | None = None,
        parent_run_id: str | None = None) -> RunOutcome:
    """Train one network as configured; MLflow records it FINISHED or FAILED with the error.
    `tags` and `parent_run_id` place the run under a search (its retraining of a front member)."""
    started = time.perf_counter()
    preflight(cfg.mlflow.tracking_uri, {"output_dir": cfg.output_dir}, tracking=cfg.mlflow.enabled)
    device = select_device(cfg.device)
    threads = configure_threads(cfg.train.threads) if device.type == "cpu" else None
    precision = precision_for(device, cfg.train.amp, cfg.train.channels_last)
    check_config(cfg.train)  # refuse bad settings and a bad spec before loading any data
    resolve_spec(cfg)
    data = load_data(cfg.data, device)
    spec = resolve_spec(cfg, data)
    counted = count(spec)
    run_dir = Path(cfg.output_dir) / f"{spec.name}-{cfg.run_key()}"
    ckpt = run_dir / "checkpoint.pt"
    previous_run_id = None
    if cfg.resume and ckpt.exists():
        previous_run_id = checkpoint.load(ckpt).get("extra", {}).get("mlflow_run_id")
    elif ckpt.exists():
        ckpt.unlink()  # a fresh run with the same config starts over
    tracker: Tracker | NullTracker = NullTracker()
    if cfg.mlflow.enabled:
        tracker = Tracker(cfg.mlflow.experiment, cfg.mlflow.run_name or spec.name,
                          uri=cfg.mlflow.tracking_uri, run_id=previous_run_id,
                          parent_run_id=parent_run_id, tags=tags)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.yaml").write_text(spec_to_yaml(spec))
    try:
        if previous_run_id is None:
            tracker.log_params(_params(cfg, data))
            tracker.set_tags({**environment_tags(), "device": str(device), "cpu_threads": threads,
                              "nas.kind": "run", "nas.selection_metric": "val_acc",
                              "nas.test_set": "reported once at the end, never used for selection",
                              "nas.spec": spec.name, **(tags or {})})
            tracker.log_text(spec_to_yaml(spec), "spec.yaml")
            tracker.log_metrics({"params": counted.params, "macs": counted.macs})
        torch.manual_seed(cfg.train.seed)
        model = build_model(spec).to(device)

        def report(metrics: dict[str, Any]) -> None:
            tracker.log_metrics({k: metrics[k] for k in EPOCH_METRICS},
                                step=metrics["epoch"])

        result = train(model, data, cfg.train, report, data_cfg=cfg.data, precision=precision,
                       checkpoint_path=ckpt, resume=cfg.resume,
                       extra_state={"mlflow_run_id": tracker.run_id}, progress=cfg.progress)
        test_acc = evaluate(result.model, data.test, data, cfg.train.eval_batch_size, precision)
        wall = time.perf_counter() - started
        tracker.log_metrics({"val_acc": result.val_acc, "test_acc": test_acc, "wall_time_s": wall,
                             "params": counted.params, "macs": counted.macs},
                            step=cfg.train.epochs)
        tracker.end("FINISHED")
    except KeyboardInterrupt:
        tracker.end("KILLED", "interrupted; continue with resume=true")
        raise
    except BaseException as err:
        tracker.end("FAILED", f"{type(err).__name__}: {err}")
        raise
    return RunOutcome(spec, counted, result, test_acc, tracker.run_id, run_dir, str(device), wall)


def summary_table(outcome: RunOutcome, cfg: RunConfig) -> str:
    last = outcome.result.history[-1] if outcome.result.history else {}
    fmt = lambda v: "-" if v is None else f"{v:.4f}"
    rows = [
        ["model", f"{outcome.spec.name} (width {outcome.spec.width}, {outcome.spec.input.resolution}px)"],
        ["params / MACs", f"{outcome.counted.params:,} / {outcome.counted.macs / 1e6:.1f}M"],
        ["data", f"{cfg.data.name}: val {cfg.data.val_size} carved from train, seed {cfg.data.split_seed}"],
        ["epochs / seed", f"{cfg.train.epochs} / {cfg.train.seed}"],
        ["val_acc (selection)", fmt(outcome.result.val_acc)],
        ["test_acc (report only)", fmt(outcome.test_acc)],
        ["last train_loss", fmt(last.get("train_loss"))],
        ["throughput", f"{last.get('img_per_s', 0):.0f} img/s on {outcome.device}"],
        ["wall time", f"{outcome.wall_s:.1f}s"],
        ["checkpoint", str(outcome.run_dir / "checkpoint.pt")],
        ["mlflow run", outcome.run_id or "disabled"],
    ]
    return format_table(["", ""], rows, align="ll")
