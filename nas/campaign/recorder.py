"""A campaign's MLflow runs, written only from the driver (one SQLite writer): a parent run, and a
child per point with its spec, counts, epochs, final metrics and `nas.status` (`nas.mlflow_layout`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from nas import mlflow_layout as ml
from nas.config import MlflowConfig
from nas.spec import spec_to_yaml
from nas.status import Status
from nas.tracking import NullTracker, Tracker, environment_tags


class CampaignRecorder:
    """The parent run and the open child runs, keyed by the campaign's point key."""

    def __init__(self, mlflow: MlflowConfig, parent_name: str, parent_run_id: str | None = None):
        self.mlflow = mlflow
        self.parent: Tracker | NullTracker = NullTracker()
        if mlflow.enabled:
            self.parent = Tracker(mlflow.experiment, parent_name, uri=mlflow.tracking_uri,
                                  run_id=parent_run_id)
        self.children: dict[Any, Tracker | NullTracker] = {}
        self.run_ids: dict[Any, str] = {}

    @property
    def uri(self) -> str | None:
        return self.parent.uri

    @property
    def tracking(self) -> bool:
        return isinstance(self.parent, Tracker)

    def start_parent(self, kind: str, params: Mapping[str, Any], tags: Mapping[str, Any],
                     artifacts: tuple[Path, ...] = ()) -> None:
        self.parent.log_params(params)
        self.parent.set_tags({**environment_tags(), ml.KIND: kind, **tags})
        for path in artifacts:
            self.parent.log_artifact(path)

    def children_with_tag(self, tag: str, kind: str | None = None) -> list[tuple[str, str]]:
        """Existing child runs of the parent (of one `nas.kind`, if given): (tag value, run id),
        oldest first. A search's retrain runs carry their trial's number too: kind keeps them apart."""
        if not self.tracking:
            return []
        runs = self.parent.client.search_runs(
            [self.parent.experiment_id], f"tags.{ml.PARENT_RUN_ID} = '{self.parent.run_id}'",
            max_results=50000, order_by=["attributes.start_time ASC"])
        return [(r.data.tags[tag], r.info.run_id) for r in runs
                if tag in r.data.tags and kind in (None, r.data.tags.get(ml.KIND))]

    def child(self, key: Any, run_name: str, tags: Mapping[str, Any],
              run_id: str | None = None) -> Tracker | NullTracker:
        if key not in self.children:
            tracker: Tracker | NullTracker = NullTracker()
            if self.tracking:
                tracker = Tracker(self.mlflow.experiment, run_name, uri=self.mlflow.tracking_uri,
                                  run_id=run_id or self.run_ids.get(key),
                                  parent_run_id=self.parent.run_id, tags=dict(tags))
            self.children[key] = tracker
            if tracker.run_id:
                self.run_ids[key] = tracker.run_id
        return self.children[key]

    def describe(self, key: Any, *, params: Mapping[str, Any], spec: Any = None,
                 macs: int | None = None, n_params: int | None = None) -> None:
        """What a point is: its params (choices or factors), spec.yaml, MACs and params."""
        child = self.children[key]
        child.log_params(params)
        if spec is not None:
            child.log_text(spec_to_yaml(spec), "spec.yaml")
            child.log_metrics({ml.MACS: macs, ml.PARAMS: n_params})

    def epoch(self, key: Any, metrics: Mapping[str, Any], step: int) -> None:
        self.children[key].log_metrics(dict(metrics), step=step)

    def finish(self, key: Any, status: Status, *, metrics: Mapping[str, Any] | None = None,
               step: int = 0, tags: Mapping[str, Any] | None = None, error: str | None = None) -> None:
        child = self.children.pop(key)
        if metrics:
            child.log_metrics(dict(metrics), step=step)
        child.set_tags({ml.STATUS: status, **(tags or {})})
        child.end(status.mlflow_terminal, error or None)

    def close_run(self, run_id: str, status: Status) -> None:
        """Close a run a kill left RUNNING without reopening it."""
        self.parent.client.set_tag(run_id, ml.STATUS, status)
        self.parent.client.set_terminated(run_id, status.mlflow_terminal)

    def kill_open(self) -> None:
        for key in list(self.children):
            self.finish(key, Status.INTERRUPTED, error="interrupted; continue with --resume")

    def discard(self, run_id: str) -> None:
        """Soft-delete a failed point's run before it is retried: one child run per point."""
        if self.tracking:
            self.parent.client.delete_run(run_id)

    def run_status(self, run_id: str) -> str | None:
        if not self.tracking:
            return None
        try:
            return self.parent.client.get_run(run_id).info.status
        except Exception:  # noqa: BLE001 - a run deleted by hand is simply gone
            return None

    def finish_parent(self, files: tuple[Path, ...], metrics: Mapping[str, float]) -> None:
        for path in files:
            self.parent.log_artifact(path)
        self.parent.log_metrics(dict(metrics))
        self.parent.end(ml.RUN_FINISHED)
