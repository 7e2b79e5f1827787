"""A search's MLflow records (driver only), over the campaign recorder: a child run per trial
(choices, spec, MACs, params, per-epoch metrics, status), opened when Tune starts the trial and
closed when it ends, plus the free ones (infeasible, duplicate) closed at once."""

from __future__ import annotations

from typing import Any

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
    def __init__(self, campaign: CampaignRecorder, search_name: str,
                 latency_tags: dict[str, str] | None = None):
        self.campaign, self.search_name = campaign, search_name
        self.latency_tags = latency_tags or {}  # runtime and threads, on every timed trial's run
        existing = campaign.children_by_tag(ml.TRIAL)
        campaign.run_ids.update({int(k): v for k, v in existing.items()})

    @property
    def run_ids(self) -> dict[int, str]:
        return self.campaign.run_ids

    @property
    def children(self) -> dict[Any, Any]:
        return self.campaign.children

    def close_leftovers(self, finished: dict[int, Status]) -> int:
        """Close runs a killed search left RUNNING: trials the study saw finish get their status
        (the kill landed between Optuna's tell and MLflow's update); the rest become KILLED and
        their architectures are sampled anew."""
        closed = 0
        for number, run_id in self.run_ids.items():
            if self.campaign.run_status(run_id) == ml.RUN_RUNNING:
                self.campaign.close_run(run_id, finished.get(number, Status.KILLED))
                closed += 1
        return closed

    def _child(self, number: int):
        return self.campaign.child(number, f"{self.search_name}-t{number:03d}",
                                   {ml.KIND: ml.KIND_TRIAL, ml.TRIAL: str(number),
                                    ml.SEARCH: self.search_name})

    def start(self, number: int, params: dict[str, Any], spec: Any, macs: int, n_params: int,
              latency_ms: float | None = None) -> None:
        child = self._child(number)
        self.campaign.describe(number, params={f"{ml.CHOICE_PREFIX}{k}": v for k, v in params.items()},
                               spec=spec, macs=macs, n_params=n_params)
        self._latency(number, latency_ms)
        child.set_tags({ml.STATUS: Status.RUNNING})

    def _latency(self, number: int, latency_ms: float | None) -> None:
        """Measured before training: logged once, with where it was measured."""
        if latency_ms is not None:
            self.children[number].log_metrics({ml.LATENCY_MS: latency_ms})
            self.children[number].set_tags(self.latency_tags)

    def epoch(self, number: int, result: dict[str, Any]) -> None:
        metrics = {k: result.get(k) for k in TRIAL_EPOCH_METRICS}
        self._child(number)
        self.campaign.epoch(number, metrics, step=int(result["epoch"]))
        if int(result["epoch"]) == 1:  # where it ran (a retry may move it)
            tags = {ml.NODE: result.get("node"), ml.DEVICE: result.get("device"),
                    ml.PRECISION: result.get("precision")}
            self.children[number].set_tags({k: v for k, v in tags.items() if v})

    def finish(self, number: int, status: Status, error: str | None = None) -> None:
        self._child(number)
        self.campaign.finish(number, Status(status), error=error)

    def unstarted(self, trial: Any, reason: str) -> None:
        """A point handed to Tune that never started (Tune stopped first): its run records what
        was sampled and why it did not train, so every row of trials.csv has its run."""
        self._child(trial.number)
        self.campaign.describe(trial.number, params={f"{ml.CHOICE_PREFIX}{k}": v for k, v in trial.params.items()})
        costs = {k: trial.user_attrs[k] for k in (ml.MACS, ml.PARAMS) if k in trial.user_attrs}
        if costs:
            self.children[trial.number].log_metrics(costs)
        self.campaign.finish(trial.number, Status.INTERRUPTED, error=reason)

    def infeasible(self, sampled: Sampled) -> None:
        self._child(sampled.number)
        self.campaign.describe(sampled.number,
                               params={f"{ml.CHOICE_PREFIX}{k}": v for k, v in sampled.params.items()},
                               spec=sampled.spec, macs=sampled.macs, n_params=sampled.n_params)
        self._latency(sampled.number, sampled.latency_ms)
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

    def __init__(self, recorder: SearchRecorder, max_epochs: int, on_done=None, on_start=None):
        self.recorder, self.max_epochs = recorder, max_epochs
        self.on_done, self.on_start = on_done, on_start

    def __getstate__(self) -> dict:
        """Tune pickles its callbacks into its experiment state; the live MLflow writers are not
        state (a resumed search reopens its runs from MLflow, never from Tune's files)."""
        return {"max_epochs": self.max_epochs}

    def on_trial_start(self, iteration, trials, trial, **info):
        number, params, spec, costs = split_config(trial.config)
        if number in self.recorder.children:
            return  # a retried trial (lost worker) keeps its run
        if self.on_start:
            self.on_start()
        self.recorder.start(number, params, spec, costs.get("macs"), costs.get("params"),
                            costs.get(ml.LATENCY_MS))
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
        if self.on_done:
            self.on_done(status, last)

    def on_trial_error(self, iteration, trials, trial, **info):
        error = getattr(trial, "error_msg", None) or "the trial's worker failed"
        self.recorder.finish(split_config(trial.config)[0], Status.FAILED, str(error)[:2000])
        if self.on_done:
            self.on_done(Status.FAILED, {})
