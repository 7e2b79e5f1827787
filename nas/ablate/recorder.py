"""MLflow layout of an ablation, written only from the driver (one SQLite writer).

Parent run: name = the experiment's name; tags `nas.kind=ablation`, `nas.ablation=<name>`,
`nas.factors=<comma list>`; artifacts `results.csv` and `summary.csv`. One child per cell x
seed: tags `nas.kind=ablation_cell`, `nas.ablation`, `nas.cell=<label>`, `nas.status`; params
`factor.<name>`, `seed`, the flattened train.* / data.* config; metrics `macs`, `params`, final
`val_acc` / `test_acc`, per-epoch `train_loss` / `val_acc` / `lr` / `img_per_s` (step = epoch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.ablate.experiment import Experiment, show
from nas.ablate.units import Unit
from nas.config import MlflowConfig
from nas.schema import to_dict
from nas.spec import spec_to_yaml
from nas.tracking import NullTracker, Tracker, environment_tags
from nas.train import EPOCH_METRICS

TERMINAL = {"COMPLETED": "FINISHED", "INVALID": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED"}


class AblationRecorder:
    def __init__(self, mlflow: MlflowConfig, exp: Experiment, name: str, parent_run_id: str | None):
        self.mlflow, self.exp, self.name = mlflow, exp, name
        self.parent: Tracker | NullTracker = NullTracker()
        if mlflow.enabled:
            self.parent = Tracker(mlflow.experiment, exp.name, uri=mlflow.tracking_uri,
                                  run_id=parent_run_id)
        self.children: dict[str, Tracker | NullTracker] = {}

    @property
    def uri(self) -> str | None:
        return self.parent.uri

    def start_parent(self, params: dict[str, Any], tags: dict[str, Any]) -> None:
        self.parent.log_params(params)
        self.parent.set_tags({**environment_tags(), "nas.kind": "ablation", "nas.ablation": self.name,
                              "nas.experiment": self.exp.name,
                              "nas.factors": ",".join(f.name for f in self.exp.factors), **tags})
        self.parent.log_artifact(self.exp.path)

    def child(self, unit: Unit, run_id: str | None = None) -> Tracker | NullTracker:
        if unit.key not in self.children:
            tracker: Tracker | NullTracker = NullTracker()
            if self.mlflow.enabled:
                tracker = Tracker(self.mlflow.experiment, f"{self.exp.name} {unit.cell.label} seed={unit.seed}",
                                  uri=self.mlflow.tracking_uri, run_id=run_id,
                                  parent_run_id=self.parent.run_id,
                                  tags={"nas.kind": "ablation_cell", "nas.ablation": self.name,
                                        "nas.cell": unit.cell.label})
            self.children[unit.key] = tracker
        return self.children[unit.key]

    def start(self, unit: Unit, run_id: str | None = None) -> str | None:
        """Open the unit's child run (status RUNNING); `run_id` reopens one a kill left behind."""
        child = self.child(unit, run_id)
        if run_id is None:
            params: dict[str, Any] = {f"factor.{k}": show(v) for k, v in unit.cell.values.items()}
            params["seed"] = unit.seed
            if unit.cfg is not None:
                cfg = to_dict(unit.cfg)
                for key in ("resume", "progress", "mlflow", "output_dir"):
                    cfg.pop(key, None)
                params.update(cfg)
            child.log_params(params)
            if unit.spec is not None:  # a reopened run has them already
                child.log_text(spec_to_yaml(unit.spec), "spec.yaml")
                child.log_metrics({"macs": unit.macs, "params": unit.params})
        child.set_tags({"nas.status": "RUNNING" if unit.valid else "INVALID"})
        return child.run_id

    def finish(self, unit: Unit, result: dict[str, Any]) -> None:
        child = self.child(unit)
        for row in result.get("history", []):
            child.log_metrics({k: row.get(k) for k in EPOCH_METRICS}, step=int(row["epoch"]))
        final = {"test_acc": result.get("test_acc"), "wall_time_s": result.get("wall_s")}
        if not result.get("history"):  # else the last epoch's val_acc is the final one
            final["val_acc"] = result.get("val_acc")
        child.log_metrics(final, step=int(result.get("epochs") or 0))
        status = result["status"]
        extra = {"device": result["device"]} if result.get("device") else {}
        if result.get("test_images"):
            extra["nas.test_images"] = result["test_images"]
        child.set_tags({"nas.status": status, **extra})
        child.end(TERMINAL[status], result.get("error") or None)
        self.children.pop(unit.key, None)

    def kill_open(self) -> None:
        for tracker in self.children.values():
            tracker.set_tags({"nas.status": "KILLED"})
            tracker.end("KILLED", "interrupted; continue with --resume")
        self.children.clear()

    def discard(self, run_id: str) -> None:
        """Delete (MLflow's soft delete) a failed unit's run before it is retried, so each cell
        and seed keeps one child run."""
        if isinstance(self.parent, Tracker):
            self.parent.client.delete_run(run_id)

    def run_status(self, run_id: str) -> str | None:
        if not isinstance(self.parent, Tracker):
            return None
        try:
            return self.parent.client.get_run(run_id).info.status
        except Exception:  # noqa: BLE001 - a run deleted by hand is simply gone
            return None

    def finish_parent(self, files: list[Path], metrics: dict[str, float], status: str = "FINISHED") -> None:
        for path in files:
            self.parent.log_artifact(path)
        self.parent.log_metrics(metrics)
        self.parent.end(status)
