"""A search's MLflow records, written by the driver alone: a child run per trial (choices, spec, costs,
per-epoch metrics, status) from Tune's start to its end; free samples' runs closed at once."""

from __future__ import annotations

from typing import Any, Callable

from ray.tune import Callback

from nas import faults
from nas import mlflow_layout as ml
from nas.campaign.recorder import CampaignRecorder
from nas.search.searcher import Sampled, outcome_status
from nas.search.trial import COSTS_KEY, SPEC_KEY, TRIAL_KEY
from nas.status import Status

TRIAL_EPOCH_METRICS = (*ml.EPOCH_METRICS, ml.TRAIN_S)  # train_s: see trial.run_trial


def latency_tags(cache: Any) -> dict[str, str]:
    """Where a search's latencies were measured (a nas.latency.LatencyCache, or None), as tags."""
    if cache is None:
        return {}
    return {ml.LATENCY_RUNTIME: cache.settings.runtime, ml.LATENCY_THREADS: str(cache.settings.threads)}


class SearchRecorder:
    def __init__(self, campaign: CampaignRecorder, search_name: str, latency_tags: dict[str, str] | None = None):
        self.campaign, self.search_name = campaign, search_name
        self.latency_tags = latency_tags or {}  # runtime and threads, on every timed trial's run
        self.run_ids: dict[int, str] = campaign.run_ids  # the campaign's own dicts, by trial number
        self.children: dict[int, Any] = campaign.children
        self.run_ids.update({int(k): v for k, v in campaign.children_with_tag(ml.TRIAL, ml.KIND_TRIAL)})

    def close_leftovers(self, finished: dict[int, Status]) -> None:
        """Close runs a kill left RUNNING: with the status the study saw (the kill fell between
        Optuna's tell and MLflow's update), else KILLED (sampled anew)."""
        for number, run_id in self.run_ids.items():
            if self.campaign.run_status(run_id) == ml.RUN_RUNNING:
                self.campaign.close_run(run_id, finished.get(number, Status.KILLED))

    def _child(self, number: int) -> Any:
        """A trial's run: opened, or reopened where a resumed or retried trial's writer is gone."""
        return self.campaign.child(number, f"{self.search_name}-t{number:03d}",
                                   {ml.KIND: ml.KIND_TRIAL, ml.TRIAL: str(number), ml.SEARCH: self.search_name})

    def _describe(self, number: int, params: dict[str, Any], spec: Any = None, macs: int | None = None,
                  n_params: int | None = None, latency_ms: float | None = None) -> Any:
        """Open (or reopen) a trial's run with what was sampled; a latency (measured before training)
        is logged once, with where it was measured."""
        child = self._child(number)
        self.campaign.describe(number, params={f"{ml.CHOICE_PREFIX}{k}": v for k, v in params.items()},
                               spec=spec, macs=macs, n_params=n_params)
        if latency_ms is not None:
            child.log_metrics({ml.LATENCY_MS: latency_ms})
            child.set_tags(self.latency_tags)
        return child

    def start(self, number: int, params: dict[str, Any], spec: Any, macs: int, n_params: int,
              latency_ms: float | None = None) -> None:
        self._describe(number, params, spec, macs, n_params, latency_ms).set_tags({ml.STATUS: Status.RUNNING})

    def epoch(self, number: int, result: dict[str, Any]) -> None:
        child = self._child(number)
        self.campaign.epoch(number, {k: result.get(k) for k in TRIAL_EPOCH_METRICS}, step=int(result["epoch"]))
        if int(result["epoch"]) == 1:  # where it ran (a retry may move it)
            tags = {ml.NODE: result.get("node"), ml.DEVICE: result.get("device"), ml.PRECISION: result.get("precision")}
            child.set_tags({k: v for k, v in tags.items() if v})

    def finish(self, number: int, status: Status, error: str | None = None) -> None:
        self._child(number)
        self.campaign.finish(number, Status(status), error=error)

    def unstarted(self, trial: Any, reason: str) -> None:
        """A point handed to Tune that never started (Tune stopped first): its run records what
        was sampled and why it did not train, so every row of trials.csv has its run."""
        costs = {k: trial.user_attrs[k] for k in (ml.MACS, ml.PARAMS) if k in trial.user_attrs}
        child = self._describe(trial.number, trial.params)
        if costs:
            child.log_metrics(costs)
        self.campaign.finish(trial.number, Status.INTERRUPTED, error=reason)

    def infeasible(self, sampled: Sampled) -> None:
        self._describe(sampled.number, sampled.params, sampled.spec, sampled.macs, sampled.n_params,
                       sampled.latency_ms)
        if sampled.duplicate_of is not None:
            reason = f"same architecture as trial {sampled.duplicate_of}: same seed and budget, its result stands"
        else:
            reason = sampled.error or "over the limits: " + ", ".join(
                f"{v:+.0%}" for v in sampled.violations if v > 0)
        self.campaign.finish(sampled.number, sampled.status, tags={ml.INFEASIBLE_REASON: reason})


def split_config(config: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A Tune trial's config -> (trial number, sampled choices, NetSpec, costs)."""
    config = dict(config)
    number = int(config.pop(TRIAL_KEY))
    spec, costs = config.pop(SPEC_KEY, None), config.pop(COSTS_KEY, {})
    return number, config, spec, costs


class RecorderCallback(Callback):
    """Ray Tune driver-side hooks -> SearchRecorder and the progress display."""

    def __init__(self, recorder: SearchRecorder, max_epochs: int, on_done: Callable[[Status, dict], None],
                 on_start: Callable[[], None]):
        self.recorder, self.max_epochs = recorder, max_epochs
        self.on_done, self.on_start = on_done, on_start

    def __getstate__(self) -> dict:
        """What Tune pickles into its experiment state: not the MLflow writers (--resume reopens runs)."""
        return {"max_epochs": self.max_epochs}

    def on_trial_start(self, iteration, trials, trial, **info):
        number, params, spec, costs = split_config(trial.config)
        if number in self.recorder.children:
            return  # a retried trial (lost worker) keeps its run
        self.on_start()
        self.recorder.start(number, params, spec, costs.get("macs"), costs.get("params"), costs.get(ml.LATENCY_MS))
        fault = faults.injected(f"tune {number}")  # the test fault hook (nas.faults)
        if fault:
            raise RuntimeError(fault)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if "train_loss" in result:
            self.recorder.epoch(split_config(trial.config)[0], result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        status = outcome_status(last, False, self.max_epochs)
        self.recorder.finish(split_config(trial.config)[0], status, last.get("nas_error"))
        self.on_done(status, last)

    def on_trial_error(self, iteration, trials, trial, **info):
        error = getattr(trial, "error_msg", None) or "the trial's worker failed"
        self.recorder.finish(split_config(trial.config)[0], Status.FAILED, str(error)[:2000])
        self.on_done(Status.FAILED, {})
