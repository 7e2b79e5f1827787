"""Multi-objective asynchronous successive halving (MO-ASHA, Schmucker et al. 2021; Syne Tune's
`MOASHA`) for Ray Tune. Scalar ASHA keeps the top 1/rf by accuracy, so it stops a cheap net that is
exactly the trade-off a search is after; MO-ASHA ranks a rung by non-dominated rank, then crowding
distance, over every objective. Rungs are Ray's (`grace_period * rf**k <= max_t`); the rule is the
pure function `promote`, the scheduler only keeps the rungs.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any, Sequence

import numpy as np
from ray.tune.schedulers import ASHAScheduler
from ray.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

from nas.errors import NasError
from nas.pareto import oriented, pareto_mask

__all__ = ["MultiObjectiveASHA", "promote", "priority", "nondominated_rank", "crowding_distance",
           "rung_milestones"]


def nondominated_rank(values, directions: Sequence[str] | None = None) -> np.ndarray:
    """Front index per row (0: non-dominated, 1: once front 0 is removed, ...); NaN rows after every front."""
    v = oriented(values, directions)
    ranks = np.full(len(v), -1, dtype=int)
    valid = ~np.isnan(v).any(axis=1)
    left = np.flatnonzero(valid)
    rank = 0
    while len(left):
        front = pareto_mask(v[left], ["max"] * v.shape[1])
        ranks[left[front]] = rank
        left = left[~front]
        rank += 1
    ranks[~valid] = rank
    return ranks


def crowding_distance(values) -> np.ndarray:
    """NSGA-II crowding distance of each row of one front (the ends of any objective: infinity);
    identical rows share one distance."""
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v.reshape(-1, 1)
    if len(v) == 0:
        return np.zeros(0)
    uniq, inverse = np.unique(v, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    n, m = uniq.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(len(v), math.inf)
    for j in range(m):
        order = np.argsort(uniq[:, j], kind="mergesort")
        col = uniq[order, j]
        dist[order[0]] = dist[order[-1]] = math.inf
        span = col[-1] - col[0]
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist[inverse]


def priority(values, directions: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rank, crowding within the rank's front) per row; NaN rows: rank after every front, crowding 0."""
    v = oriented(values, directions)
    ranks = nondominated_rank(v)
    crowd = np.zeros(len(v))
    valid = ~np.isnan(v).any(axis=1)
    for r in np.unique(ranks[valid]):
        members = np.flatnonzero(valid & (ranks == r))
        crowd[members] = crowding_distance(v[members])
    return ranks, crowd


def promote(rung_values, new_index: int, keep_fraction: float,
            directions: Sequence[str] | None = None) -> bool:
    """Does row `new_index` of the rung (n results x k objectives, oriented by `directions`; None:
    all "max") continue? Iff fewer than `keep_fraction * n_valid` (1 / rf) other valid rows are
    strictly ahead by (rank, crowding). Counting positions makes "top 1/rf" exact in ranks where Ray
    interpolates; the first result always continues, as in Ray. A NaN row never continues nor counts
    (Ray's ASHA lets it through: `nan < cutoff` is False)."""
    v = oriented(rung_values, directions)
    if not 0 <= new_index < len(v):
        raise IndexError(f"new_index {new_index} outside a rung of {len(v)} results")
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    valid = ~np.isnan(v).any(axis=1)
    if not valid[new_index]:
        return False
    new = int(np.count_nonzero(valid[:new_index]))  # its index among the valid rows
    ranks, crowd = priority(v[valid])
    r, c = ranks[new], crowd[new]
    ahead = (ranks < r) | ((ranks == r) & (crowd > c))
    ahead[new] = False
    return int(np.count_nonzero(ahead)) < keep_fraction * len(ranks)


def rung_milestones(grace_period: float, max_t: float, reduction_factor: float) -> list[float]:
    """grace_period * rf**k for k = 0, 1, ... while <= max_t (Ray's rungs, one bracket), ascending."""
    return list(itertools.takewhile(lambda m: m <= max_t * (1 + 1e-9),
                                    (grace_period * reduction_factor ** k for k in itertools.count())))


def _objective_pairs(objectives) -> list[tuple[str, str]]:
    """[(name, "max"|"min")] from (name, direction) pairs or nas.pareto.Objective-like objects."""
    pairs = []
    for o in objectives:
        name, direction = (o.name, o.direction) if hasattr(o, "direction") else tuple(o)
        if direction not in ("max", "min"):
            raise ValueError(f"objective {name!r}: direction must be 'max' or 'min', got {direction!r}")
        pairs.append((str(name), direction))
    if not pairs:
        raise ValueError("MultiObjectiveASHA needs at least one objective, e.g. [('val_acc', 'max'), ('macs', 'min')]")
    if len({n for n, _ in pairs}) != len(pairs):
        raise ValueError(f"objectives repeat a name: {[n for n, _ in pairs]}")
    return pairs


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # None too
        return math.nan


class MultiObjectiveASHA(FIFOScheduler):
    """ASHA promoting by `promote` over `objectives` ([(result key, "max" | "min")], reported every
    epoch, costs too). A result without time_attr or an objective is no decision (CONTINUE, as Ray)."""

    def __init__(self, *, objectives, time_attr: str = "epoch", max_t: float,
                 grace_period: float = 1, reduction_factor: float = 2, stop_last_trials: bool = True):
        if not max_t > 0:
            raise ValueError(f"max_t must be positive, got {max_t}")
        if not 0 < grace_period <= max_t:
            raise ValueError(f"grace_period must be in (0, max_t={max_t}], got {grace_period}")
        if not reduction_factor > 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
        super().__init__()
        self._objectives = _objective_pairs(objectives)
        self._time_attr = time_attr
        self._max_t = max_t
        self._rf = reduction_factor
        self._stop_last_trials = stop_last_trials
        # descending milestones, each with {trial_id: [objective values]}; promotions per milestone
        self._rungs: list[tuple[float, dict[str, list[float]]]] = [
            (m, {}) for m in reversed(rung_milestones(grace_period, max_t, reduction_factor))]
        self._promoted: dict[float, int] = {m: 0 for m, _ in self._rungs}
        self._num_stopped = 0

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return list(self._objectives)

    def _decide(self, trial_id: str, t: float, values: list[float]) -> str:
        """Judge the result at the highest rung it has reached and not yet been judged at."""
        for milestone, recorded in self._rungs:
            if t < milestone or trial_id in recorded:
                continue
            rung = np.array([*recorded.values(), values], dtype=float).reshape(-1, len(self._objectives))
            keep = promote(rung, len(rung) - 1, 1.0 / self._rf, [d for _, d in self._objectives])
            self._promoted[milestone] += int(keep)
            if not any(math.isnan(x) for x in values):
                recorded[trial_id] = values
            return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def _values(self, result: dict) -> tuple[float, list[float]] | None:
        """(time, objective values) of a result; None without the time or an objective key."""
        if self._time_attr not in result or any(name not in result for name, _ in self._objectives):
            return None
        return float(result[self._time_attr]), [_number(result[name]) for name, _ in self._objectives]

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if (judged := self._values(result)) is None:
            return TrialScheduler.CONTINUE
        t, values = judged
        if t >= self._max_t and self._stop_last_trials:
            action = TrialScheduler.STOP
        else:
            action = self._decide(trial.trial_id, t, values)
        if action == TrialScheduler.STOP:
            self._num_stopped += 1
        return action

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        """A finished (or stopped) trial's last result counts at the rung it reached, as in Ray."""
        if (judged := self._values(result)) is not None:
            t, values = judged
            reached = [rec for m, rec in self._rungs if t >= m]  # highest first
            if reached and trial.trial_id not in reached[0] and not any(math.isnan(x) for x in values):
                reached[0][trial.trial_id] = values

    def debug_string(self) -> str:
        names = ", ".join(f"{n}:{d}" for n, d in self._objectives)
        rungs = " | ".join(f"{self._time_attr} {m:g}: {len(rec)} recorded, {self._promoted[m]} promoted"
                           for m, rec in reversed(self._rungs))
        return f"Using MultiObjectiveASHA ({names}): num_stopped={self._num_stopped}\n{rungs}"

    # JSON, not pickle: the project never unpickles (tests/test_faults.py scans for it)
    def save(self, checkpoint_path: str) -> None:
        state = {"rungs": [[m, rec] for m, rec in self._rungs],
                 "promoted": [[m, c] for m, c in self._promoted.items()],
                 "num_stopped": self._num_stopped}
        with open(checkpoint_path, "w") as f:
            json.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            state = json.load(f)
        self._rungs = [(m, {k: [float(x) for x in v] for k, v in rec.items()}) for m, rec in state["rungs"]]
        self._promoted = {m: int(c) for m, c in state["promoted"]}
        self._num_stopped = int(state["num_stopped"])


SCHEDULERS = ("auto", "moasha", "asha")


def scheduler_name(early_stopping: bool, asked: str, objectives: Sequence[Any],
                   budget_stops: bool = True) -> str:
    """`auto`: moasha with several objectives, asha (val_acc) with one, none at a budget that does
    not stop early (`Budget.early_stopping`); none with --no-asha; else what was asked."""
    if asked not in SCHEDULERS:
        raise NasError(f"--scheduler {asked!r} must be {', '.join(SCHEDULERS)}")
    if not early_stopping:
        return "none"
    if asked != "auto":
        return asked
    return "none" if not budget_stops else "moasha" if len(objectives) > 1 else "asha"


def make_scheduler(name: str, objectives: Sequence[Any], budget: Any) -> TrialScheduler:
    """The Tune scheduler `name` (see scheduler_name) on the budget's rungs (epochs)."""
    rungs = {"time_attr": "epoch", "max_t": budget.epochs, "grace_period": budget.grace_epochs,
             "reduction_factor": budget.reduction_factor}
    if name == "moasha":
        return MultiObjectiveASHA(objectives=objectives, **rungs)
    if name == "asha":
        return ASHAScheduler(metric="val_acc", mode="max", **rungs)
    return FIFOScheduler()
