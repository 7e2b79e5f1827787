"""A Ray Tune searcher on an Optuna study in SQLite, not Ray's `OptunaSearch`: the study is durable
(a killed search resumes with the sampler's history; `Tuner.restore` has lost searcher state), free
samples (invalid, over a limit, duplicates) are rejected by `nas.count` before Ray schedules them,
every trained trial is told its values (a pruned one those of its last rung), for several objectives.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import optuna
from ray.tune.search import Searcher

from nas.blocks import Cost
from nas.campaign.time_model import Schedule, TimeModel, Work
from nas.counting import count
from nas.errors import NasError, SpecError
from nas.pareto import Objective
from nas.search.known_cost import KnownCostSampler
from nas.search.trial import COSTS_KEY, SPEC_KEY, TRIAL_KEY
from nas.space import OptunaChooser, RandomChooser, SearchSpace, option_key
from nas.spec import NetSpec
from nas.status import Status

MAX_CONSECUTIVE_INFEASIBLE = 500
# free samples in a row before a random point is queued: TPE with 2 trials at once kept proposing the
# arch a running trial trains (the stand-in: 409 duplicates a search, 12 of 20 searches stopped at 500)
RANDOM_AFTER_FREE = 20
STATUS_ATTR = "nas_status"  # the trial's nas.status.Status, as an Optuna user attribute


def nsga2_population(trials: int) -> int:
    """Optuna's default population (50) makes a 50-trial search one random generation; a
    quarter of the budget gives NSGA-II at least four generations to select in."""
    return max(8, min(50, trials // 4))


def set_constraints(trial: optuna.trial.Trial, violations: list[float]) -> None:
    """Feasible when every value <= 0 (Optuna's convention): TPE models the feasible region."""
    trial.set_user_attr("constraint", violations)
    for i, value in enumerate(violations):
        trial.set_constraint(f"limit{i}", float(value))


# name -> (seed, trials to run) -> sampler
SAMPLERS: dict[str, Callable[[int, int], optuna.samplers.BaseSampler]] = {
    "nsga2": lambda seed, trials: optuna.samplers.NSGAIISampler(seed=seed, population_size=nsga2_population(trials)),
    "tpe": lambda seed, trials: optuna.samplers.TPESampler(seed=seed),
    "gp": lambda seed, trials: optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False),
    "ehvi": lambda seed, trials: KnownCostSampler(seed),
    "random": lambda seed, trials: optuna.samplers.RandomSampler(seed=seed),
}
COUNTED_COSTS = ("macs", "params")  # objectives `nas.count` gives before training
KNOWN_COSTS = (*COUNTED_COSTS, "latency_ms")  # known before training: counted, or measured (nas.latency)
LATENCY_CANDIDATES = 128  # ehvi's candidates per ask when the cost is measured (each shape timed once)
AUTO = "auto"  # --sampler's default: the benchmark's best sampler where it applies (pick_sampler)


def pick_sampler(name: str, objectives: list[Objective], space: SearchSpace,
                 started_with: str | None = None) -> str:
    """`auto`: what a resumed search `started_with`, else ehvi (search_quality.py's best) for a learned
    objective against a counted cost on finite choices, else gp (any objectives, float ranges; a
    measured latency too: ehvi would time a fresh candidate pool at every ask)."""
    if name != AUTO:
        return name
    if started_with:
        return started_with
    costs_known = len(objectives) == 2 and objectives[0].name not in KNOWN_COSTS and objectives[1].name in COUNTED_COSTS
    finite = all(c.kind in ("categorical", "int") for c in space.choices)
    return "ehvi" if costs_known and finite else "gp"


# Samplers told the free samples (constraint violations, a duplicate's earlier values): without
# them TPE kept proposing the over-limit region and stalled. NSGA-II gets FAIL: never in a generation
OBSERVE_FREE = ("tpe", "gp")  # ehvi never proposes a free sample once past its random start


@dataclass(frozen=True)
class Limits:
    max_macs: float | None = None
    max_params: float | None = None
    max_latency_ms: float | None = None

    def violations(self, macs: int, params: int, latency_ms: float | None = None) -> list[float]:
        """Relative excess per limit, positive when over (Optuna's constraint convention); latency 0
        while unmeasured (a point over the MAC or param limit is not timed)."""
        out = [value / limit - 1.0 for value, limit in ((macs, self.max_macs), (params, self.max_params))
               if limit is not None]
        if self.max_latency_ms is not None:
            out.append(0.0 if latency_ms is None else latency_ms / self.max_latency_ms - 1.0)
        return out or [0.0]


@dataclass(frozen=True)
class Sampled:
    """One sampled point: its choices and, when it builds, its checked spec and costs."""

    number: int
    params: dict[str, Any]
    spec: NetSpec | None
    macs: int | None = None
    n_params: int | None = None
    error: str | None = None
    violations: list[float] = field(default_factory=list)
    duplicate_of: int | None = None  # an earlier trial trained this exact architecture
    latency_ms: float | None = None  # measured before training when a search needs it

    @property
    def costs(self) -> dict[str, Any]:
        """Known before training: MACs, params and, where measured, the latency."""
        latency = {} if self.latency_ms is None else {"latency_ms": self.latency_ms}
        return {"macs": self.macs, "params": self.n_params, **latency}

    @property
    def status(self) -> Status:
        """Why a free sample was not trained."""
        return Status.INFEASIBLE if self.duplicate_of is None else Status.DUPLICATE


def architecture_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def trial_status(trial: optuna.trial.FrozenTrial) -> Status:
    """The nas status a trial was given (RUNNING while Optuna says so, FAILED if none)."""
    if STATUS_ATTR in trial.user_attrs:
        return Status(trial.user_attrs[STATUS_ATTR])
    return Status.RUNNING if trial.state == optuna.trial.TrialState.RUNNING else Status.FAILED


class OptunaSearcher(Searcher):
    """Asks Optuna for architectures, filters infeasible ones, tells Optuna the outcomes."""

    def __init__(self, study: optuna.Study, space: SearchSpace, objectives: list[Objective], *,
                 to_spec: Callable[[dict[str, Any]], NetSpec], limits: Limits, max_epochs: int,
                 trials: int, on_infeasible: Callable[[Sampled], None], observe_free: bool = False,
                 latency: Callable[[NetSpec], float] | None = None,
                 time_model: TimeModel | None = None, schedule: Schedule | None = None):
        super().__init__(metric="val_acc", mode="max")
        self.study, self.space, self.objectives = study, space, objectives
        self.to_spec, self.limits, self.max_epochs = to_spec, limits, max_epochs
        self.remaining = trials
        self.on_infeasible, self.observe_free = on_infeasible, observe_free
        self.latency = latency  # spec -> measured ms (cached per shape); None: not searched on
        self.live: dict[str, optuna.trial.Trial] = {}
        self.infeasible = 0
        # archs trained or training: same seed and budget, same numbers, so a re-proposal is DUPLICATE
        self.trained: dict[tuple, int] = {
            architecture_key(t.params): t.number for t in study.get_trials(deepcopy=False)
            if STATUS_ATTR in t.user_attrs and trial_status(t).trained}
        # a trial's seconds: the time model (calibrated here, else its reference shape), refitted on this
        # search's trained trials as they finish
        self.prior_time = time_model or TimeModel()
        self.schedule = schedule or Schedule(1, 0, 128)  # unknown: only the ratios matter then
        self.time_model = self.prior_time
        self.point_costs: dict[tuple, Cost | None] = {}  # architecture_key -> its cost (None: invalid)
        if isinstance(study.sampler, KnownCostSampler):
            self._refit_time()
            study.sampler.bind_cost(self._known_cost(), fidelity=self._fidelity, seconds=self._seconds)

    def _known_cost(self) -> Callable[[dict[str, Any]], float | None]:
        """The cost objective of a point, from its spec; None if it is invalid or over a limit."""
        names = [o.name for o in self.objectives]
        if len(names) != 2 or names[1] not in KNOWN_COSTS:
            raise NasError(f"--sampler ehvi searches val_acc against one cost known before training"
                           f" ({' or '.join(KNOWN_COSTS)}), not {','.join(names)}; use --sampler gp or nsga2")
        if names[1] == "latency_ms":  # timed, not counted: fewer candidates, each shape once
            self.study.sampler.candidates = min(self.study.sampler.candidates, LATENCY_CANDIDATES)

        def cost(params: dict[str, Any]) -> float | None:
            point = self._measure(params)
            return None if point.spec is None or max(point.violations) > 0 else float(point.costs[names[1]])

        return cost

    def _point_cost(self, params: dict[str, Any]) -> Cost | None:
        key = architecture_key(params)
        if key not in self.point_costs:
            try:
                self.point_costs[key] = count(self.to_spec(params)).cost
            except SpecError:
                self.point_costs[key] = None
        return self.point_costs[key]

    def _seconds(self, params: dict[str, Any]) -> float:
        """Predicted seconds of a trial of `params` to the full budget."""
        cost = self._point_cost(params)
        seconds = self.time_model.seconds(Work(cost, self.schedule, self.max_epochs)) if cost else 0.0
        return max(seconds, 1e-9)

    def _refit_time(self) -> None:
        """The time model refitted on every trained trial's `train_s` and epochs."""
        observed = []
        for t in self.study.get_trials(deepcopy=False):
            seconds, epochs = t.user_attrs.get("train_s"), t.user_attrs.get("epochs")
            cost = self._point_cost(t.params) if seconds and epochs else None
            if cost is not None:
                observed.append((Work(cost, self.schedule, epochs), float(seconds)))
        self.time_model = self.prior_time.refit(observed)

    def _fidelity(self, trial: optuna.trial.FrozenTrial) -> float | None:
        """The share of the full budget a told trial's values were measured at (None: untrained)."""
        if not trial_status(trial).trained or "epochs" not in trial.user_attrs:
            return None
        return min(1.0, trial.user_attrs["epochs"] / self.max_epochs)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # objectives are ours; Ray's single metric only drives ASHA

    def __getstate__(self) -> dict:
        """What Tune pickles into its experiment state: not the study (SQLite) nor the callbacks."""
        return {"max_epochs": self.max_epochs, "remaining": self.remaining}

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: the study lives in SQLite; `--resume` reopens it."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore (see save)."""

    def _measure(self, params: dict[str, Any], number: int = -1) -> Sampled:
        """A point's spec and costs, its latency timed only within the MAC and param limits."""
        try:
            spec = self.to_spec(params)
            counted = count(spec)
        except SpecError as err:
            return Sampled(number, params, None, error=str(err))
        self.point_costs[architecture_key(params)] = counted.cost
        feasible = max(self.limits.violations(counted.macs, counted.params)) <= 0
        latency = self.latency(spec) if self.latency and feasible else None
        return Sampled(number, params, spec, counted.macs, counted.params,
                       violations=self.limits.violations(counted.macs, counted.params, latency), latency_ms=latency)

    def _sample(self) -> tuple[optuna.trial.Trial, Sampled]:
        trial = self.study.ask()
        return trial, self._measure(self.space.sample(OptunaChooser(trial)), trial.number)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.remaining <= 0:
            return Searcher.FINISHED
        for attempt in range(MAX_CONSECUTIVE_INFEASIBLE):
            if attempt and attempt % RANDOM_AFTER_FREE == 0:
                self._queue_random_point(attempt)
            trial, sampled = self._sample()
            if sampled.error is None and max(sampled.violations) <= 0:
                sampled = replace(sampled, duplicate_of=self.trained.get(architecture_key(sampled.params)))
                if sampled.duplicate_of is None:
                    break
            self.infeasible += 1
            self._tell_infeasible(trial, sampled)
        else:
            raise SpecError(f"{MAX_CONSECUTIVE_INFEASIBLE} samples in a row were invalid, over"
                            " the max_macs/max_params limits or already trained; relax the limits"
                            " or widen the space")
        self.trained[architecture_key(sampled.params)] = trial.number
        for key, value in sampled.costs.items():
            trial.set_user_attr(key, value)
        if self.observe_free:
            set_constraints(trial, sampled.violations)
        self.live[trial_id] = trial
        self.remaining -= 1
        return {**sampled.params, TRIAL_KEY: trial.number, SPEC_KEY: sampled.spec, COSTS_KEY: sampled.costs}

    def _queue_random_point(self, attempt: int) -> None:
        """The next ask gets a uniform random point (Optuna's stored form of its values)."""
        asked = len(self.study.get_trials(deepcopy=False))
        params = self.space.sample(RandomChooser(seed=hash((asked, attempt))))
        kinds = {c.label: c.kind for c in self.space.choices}
        stored = {k: option_key(v) if kinds.get(k) == "categorical" else v for k, v in params.items()}
        self.study.enqueue_trial(stored, user_attrs={"fallback": "random"}, skip_if_exists=False)

    def _tell_infeasible(self, trial: optuna.trial.Trial, sampled: Sampled) -> None:
        """A free sample, recorded without training; OBSERVE_FREE says what the sampler is told."""
        trial.set_user_attr(STATUS_ATTR, sampled.status.value)
        if sampled.duplicate_of is not None:
            trial.set_user_attr("duplicate_of", sampled.duplicate_of)
        if sampled.error is not None:
            trial.set_user_attr("error", sampled.error)
        else:
            for key, value in {**sampled.costs, "constraint": sampled.violations}.items():
                trial.set_user_attr(key, value)
        values = self._observation(trial, sampled) if self.observe_free else None
        self.study.tell(trial, values, state=optuna.trial.TrialState.FAIL if values is None else None)
        self.on_infeasible(sampled)

    def _observation(self, trial: optuna.trial.Trial, sampled: Sampled) -> list[float] | None:
        """What a sampler without generations is told of a free sample, or None (FAIL)."""
        if sampled.duplicate_of is not None:
            earlier = self.study.get_trials(deepcopy=False)[sampled.duplicate_of]
            if earlier.values is None:
                return None
            set_constraints(trial, sampled.violations)  # every told trial has them (GP needs it)
            return list(earlier.values)
        if sampled.error is not None:
            return None
        set_constraints(trial, sampled.violations)
        worst = {"val_acc": 0.0, "macs": sampled.macs, "params": sampled.n_params,
                 "latency_ms": sampled.latency_ms if sampled.latency_ms is not None else 1e9}
        return [float(worst[o.name]) for o in self.objectives]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        trial = self.live.pop(trial_id, None)
        if trial is None:
            return
        status = outcome_status(result, error, self.max_epochs)
        trial.set_user_attr(STATUS_ATTR, status.value)
        if not status.trained:  # a failure may be transient (a lost worker): may be retried
            self.trained.pop(architecture_key(trial.params), None)
        if result:
            trial.set_user_attr("epochs", int(result.get("epoch", 0)))
            if status.trained and result.get("train_s"):
                trial.set_user_attr("train_s", float(result["train_s"]))
            for key in ("node", "device"):
                if result.get(key):
                    trial.set_user_attr(key, result[key])
            if result.get("nas_error"):
                trial.set_user_attr("error", result["nas_error"])
        if status.trained:  # a pruned trial's values at its last rung reach the sampler too
            trial.set_user_attr("val_acc", result.get("val_acc"))
            self.study.tell(trial, [float(result[o.name]) for o in self.objectives])
            if isinstance(self.study.sampler, KnownCostSampler) and result.get("train_s"):
                self._refit_time()
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)


def outcome_status(result: dict | None, error: bool, max_epochs: int) -> Status:
    """COMPLETED (all epochs), PRUNED (stopped early by ASHA) or FAILED (raised, NaN, lost)."""
    if error or not result or result.get("nas_error") or result.get("val_acc") is None:
        return Status.FAILED
    return Status.COMPLETED if int(result.get("epoch", 0)) >= max_epochs else Status.PRUNED
