"""MLflow layout of a search, written only from the driver (one SQLite writer): a parent run
per search, a child run per trial (choices, spec, MACs, params, per-epoch metrics, status)."""

from __future__ import annotations

import os
from typing import Any

from ray.tune import Callback

from nas.search.searcher import TRIAL_KEY, Sampled, outcome_status
from nas.spec import NetSpec, spec_to_yaml
from nas.tracking import Tracker
from nas.train import EPOCH_METRICS

TRIAL_EPOCH_METRICS = (*EPOCH_METRICS, "train_s")  # train_s: see trial.run_trial


class SearchRecorder:
    def __init__(self, parent: Tracker, experiment: str, uri: str | None, search_name: str):
        self.parent, self.experiment, self.uri = parent, experiment, uri
        self.search_name = search_name
        self.children: dict[int, Tracker] = {}
        self.run_ids: dict[int, str] = self._existing_children()

    def _existing_children(self) -> dict[int, str]:
        runs = self.parent.client.search_runs(
            [self.parent.experiment_id], f"tags.mlflow.parentRunId = '{self.parent.run_id}'",
            max_results=50000)
        return {int(r.data.tags["nas.trial"]): r.info.run_id for r in runs if "nas.trial" in r.data.tags}

    def close_leftovers(self, finished: dict[int, str]) -> int:
        """Close runs a killed search left RUNNING: trials the study saw finish get their status
        (the kill landed between Optuna's tell and MLflow's update); the rest become KILLED and
        their architectures are sampled anew."""
        closed = 0
        for number, run_id in self.run_ids.items():
            run = self.parent.client.get_run(run_id)
            if run.info.status != "RUNNING":
                continue
            status = finished.get(number, "KILLED")
            self.parent.client.set_tag(run_id, "nas.status", status)
            terminal = {"KILLED": "KILLED", "FAILED": "FAILED"}.get(status, "FINISHED")
            self.parent.client.set_terminated(run_id, terminal)
            closed += 1
        return closed

    def _child(self, number: int) -> Tracker:
        if number not in self.children:
            tracker = Tracker(self.experiment, f"{self.search_name}-t{number:03d}", uri=self.uri,
                              run_id=self.run_ids.get(number), parent_run_id=self.parent.run_id,
                              tags={"nas.kind": "trial", "nas.trial": str(number),
                                    "nas.search": self.search_name})
            self.children[number] = tracker
            self.run_ids[number] = tracker.run_id
        return self.children[number]

    def start(self, number: int, params: dict[str, Any], spec: NetSpec, macs: int,
              n_params: int) -> None:
        child = self._child(number)
        child.log_params({f"choice.{k}": v for k, v in params.items()})
        child.log_text(spec_to_yaml(spec), "spec.yaml")
        child.log_metrics({"macs": macs, "params": n_params})
        child.set_tags({"nas.status": "RUNNING"})

    def epoch(self, number: int, result: dict[str, Any]) -> None:
        metrics = {k: result.get(k) for k in TRIAL_EPOCH_METRICS}
        if "latency_ms" in result:
            metrics["latency_ms"] = result["latency_ms"]
        child = self._child(number)
        child.log_metrics(metrics, step=int(result["epoch"]))
        if int(result["epoch"]) == 1 and result.get("node"):  # where it ran (a retry may move it)
            child.set_tags({"nas.node": result["node"]})

    def finish(self, number: int, status: str, error: str | None = None) -> None:
        child = self._child(number)
        child.set_tags({"nas.status": status})
        child.end("FAILED" if status == "FAILED" else "FINISHED", error)
        self.children.pop(number, None)

    def infeasible(self, sampled: Sampled) -> None:
        child = self._child(sampled.number)
        child.log_params({f"choice.{k}": v for k, v in sampled.params.items()})
        if sampled.spec is not None:
            child.log_text(spec_to_yaml(sampled.spec), "spec.yaml")
            child.log_metrics({"macs": sampled.macs, "params": sampled.n_params})
        if sampled.duplicate_of is not None:
            reason = f"same architecture as trial {sampled.duplicate_of}: same seed and budget, its result stands"
        else:
            reason = sampled.error or "over the limits: " + ", ".join(
                f"{v:+.0%}" for v in sampled.violations if v > 0)
        child.set_tags({"nas.status": sampled.status, "nas.infeasible_reason": reason})
        child.end("FINISHED")
        self.children.pop(sampled.number, None)


class RecorderCallback(Callback):
    """Ray Tune driver-side hooks -> SearchRecorder."""

    def __init__(self, recorder: SearchRecorder, to_spec, max_epochs: int, on_done=None,
                 on_start=None):
        self.recorder, self.to_spec, self.max_epochs = recorder, to_spec, max_epochs
        self.on_done, self.on_start = on_done, on_start

    @staticmethod
    def _split(trial) -> tuple[int, dict[str, Any]]:
        config = dict(trial.config)
        return int(config.pop(TRIAL_KEY)), config

    def on_trial_start(self, iteration, trials, trial, **info):
        number, params = self._split(trial)
        if number in self.recorder.children:
            return  # a retried trial (lost worker) keeps its run
        if self.on_start:
            self.on_start()
        from nas.counting import count

        spec = self.to_spec(params)
        counted = count(spec)
        self.recorder.start(number, params, spec, counted.macs, counted.params)
        if number == _injected_tune_stop():
            raise RuntimeError(f"injected Tune stop at trial {number}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "train_loss" in result:
            self.recorder.epoch(self._split(trial)[0], result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        status = outcome_status(last, False, self.max_epochs)
        self.recorder.finish(self._split(trial)[0], status, last.get("nas_error"))
        if self.on_done:
            self.on_done(status, last)

    def on_trial_error(self, iteration, trials, trial, **info):
        error = getattr(trial, "error_msg", None) or "the trial's worker failed"
        self.recorder.finish(self._split(trial)[0], "FAILED", str(error)[:2000])
        if self.on_done:
            self.on_done("FAILED", {})


def _injected_tune_stop() -> int | None:
    """$NAS_STOP_TUNE_AT=N: Tune itself stops when trial N starts, as when Ray's memory monitor
    kills a worker (fault-injection tests of the driver's restart)."""
    raw = os.environ.get("NAS_STOP_TUNE_AT", "")
    return int(raw) if raw.strip() else None
