"""An ablation's MLflow records (driver only), over the campaign recorder: a child run per cell x
seed with its factors, seed, config, spec and counts, then its epochs and final metrics."""

from __future__ import annotations

from typing import Any

from nas import mlflow_layout as ml
from nas.ablate.experiment import Experiment, show
from nas.ablate.grid import CellRun
from nas.campaign.recorder import CampaignRecorder
from nas.config import run_params
from nas.job import JobResult
from nas.status import Status


class AblationRecorder:
    def __init__(self, campaign: CampaignRecorder, exp: Experiment, name: str):
        self.campaign, self.exp, self.name = campaign, exp, name

    def child(self, point: CellRun, run_id: str | None = None):
        return self.campaign.child(point.key, f"{self.exp.name} {point.cell.label} seed={point.seed}",
                                   {ml.KIND: ml.KIND_CELL, ml.ABLATION: self.name, ml.CELL: point.cell.label,
                                    ml.POINT: point.key},
                                   run_id)

    def start(self, point: CellRun, run_id: str | None = None) -> str | None:
        """Open the point's child run (status RUNNING); `run_id` reopens one a kill left behind."""
        child = self.child(point, run_id)
        if run_id is None:
            params: dict[str, Any] = {f"{ml.FACTOR_PREFIX}{k}": show(v) for k, v in point.cell.values.items()}
            params[ml.SEED] = point.seed
            if point.cfg is not None:
                params.update(run_params(point.cfg))
            self.campaign.describe(point.key, params=params, spec=point.spec, macs=point.macs,
                                   n_params=point.params)
        child.set_tags({ml.STATUS: Status.RUNNING if point.valid else Status.INFEASIBLE})
        return child.run_id

    def finish(self, point: CellRun, result: JobResult) -> None:
        self.child(point)
        for row in result.history:
            self.campaign.epoch(point.key, {k: row.get(k) for k in ml.EPOCH_METRICS}, step=int(row["epoch"]))
        final = {ml.TEST_ACC: result.test_acc, ml.WALL_TIME_S: result.wall_s}
        if not result.history:  # else the last epoch's val_acc is the final one
            final[ml.VAL_ACC] = result.val_acc
        tags = {ml.DEVICE: result.device if result.device != "?" else None, ml.NODE: result.node,
                ml.PRECISION: result.precision, ml.TEST_IMAGES: result.test_images}
        tags = {k: v for k, v in tags.items() if v}
        self.campaign.finish(point.key, result.status, metrics=final, step=result.epochs, tags=tags,
                             error=result.error)
