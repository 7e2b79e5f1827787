"""`nas search --retrain-top K`: the K best front members trained again at the full `nas run` budget
(the search's words, so its spec overrides), as child runs of the search; their test accuracy is what a
paper reports. Weights kept (`weights/trialNNN.pt`) and exported to ONNX (`export/`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from nas import mlflow_layout as ml
from nas.campaign.recorder import CampaignRecorder
from nas.config import RunConfig, load_run_config, resolve_spec, run_params
from nas.counting import count
from nas.data import DataBundle, load_data
from nas.errors import NasError
from nas.export import export_trained
from nas.job import Job, Outcome, RunFiles, execute, run_folder
from nas.spec import spec_to_yaml
from nas.status import Status


def retrain_front(outcome, settings, campaign: CampaignRecorder) -> pd.DataFrame:
    best = outcome.front.sort_values("val_acc", ascending=False).head(settings.plan.retrain_top)
    rows, bundles = [], {}
    for _, row in best.iterrows():
        number = int(row["trial"])
        path = outcome.folder / "front" / f"trial{number:03d}.yaml"
        print(f"retraining trial {number} at the full budget: nas run spec={path}")
        cfg = load_run_config([f"spec={path}"], overrides=settings.run)
        if cfg.data not in bundles:  # loaded once for every member
            bundles[cfg.data] = load_data(cfg.data, "cpu")
        tags = {ml.KIND: ml.KIND_RETRAIN, ml.TRIAL: str(number), ml.RETRAIN_OF: str(row["mlflow_run_id"])}
        spec, done = retrain(cfg, bundles[cfg.data], campaign, f"{outcome.name}-retrain-t{number:03d}", tags)
        print(export_trained(done.model, spec, outcome.folder, f"trial{number:03d}"))
        retrained = {"retrain_val_acc": done.result.val_acc, "retrain_test_acc": done.result.test_acc,
                     "retrain_epochs": cfg.train.epochs}
        if row["mlflow_run_id"] and campaign.tracking:
            for key, value in retrained.items():
                if value is not None:
                    campaign.parent.client.log_metric(row["mlflow_run_id"], key, float(value))
        rows.append({"trial": number, "macs": row["macs"], "search_val_acc": row["val_acc"], **retrained})
    table = pd.DataFrame(rows)
    table.to_csv(outcome.folder / "retrained.csv", index=False)
    campaign.parent.log_artifact(outcome.folder / "retrained.csv")
    return table


def retrain(cfg: RunConfig, data: DataBundle, campaign: CampaignRecorder, name: str,
            tags: dict[str, str]) -> tuple[Any, Outcome]:
    """One member as a Job in its `nas run` folder, recorded as the search's child run `name`;
    NasError when it fails (FAILED in MLflow with the error)."""
    spec = resolve_spec(cfg, data)
    counted = count(spec)
    folder = run_folder(cfg, spec)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.yaml").write_text(spec_to_yaml(spec))
    child = campaign.child(name, name, tags)
    campaign.describe(name, params=run_params(cfg, data), spec=spec, macs=counted.macs, n_params=counted.params)
    child.set_tags({ml.STATUS: Status.RUNNING, ml.SELECTION_METRIC: ml.VAL_ACC,
                    ml.TEST_SET: ml.TEST_SET_ONCE, ml.SPEC: spec.name})
    report = lambda m: campaign.epoch(name, {k: m[k] for k in ml.EPOCH_METRICS}, step=m["epoch"])
    try:
        done = execute(Job(spec, cfg, point=name), data, report,
                       files=RunFiles(folder / "checkpoint.pt", cfg.resume), progress=cfg.progress)
    except KeyboardInterrupt:
        campaign.finish(name, Status.INTERRUPTED, error="interrupted (Ctrl-C) while retraining")
        raise
    result = done.result
    if result.traceback:
        child.log_text(result.traceback, "traceback.txt")
    campaign.finish(name, result.status, step=result.epochs, error=result.error,
                    metrics={ml.VAL_ACC: result.val_acc, ml.TEST_ACC: result.test_acc, ml.WALL_TIME_S: result.wall_s},
                    tags={ml.DEVICE: result.device, ml.PRECISION: result.precision})
    if result.status is not Status.COMPLETED:
        raise NasError(result.error)
    return spec, done
