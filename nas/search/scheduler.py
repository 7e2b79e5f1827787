"""Multi-objective asynchronous successive halving (MO-ASHA) for Ray Tune.

Scalar ASHA stops a trial at a rung unless its accuracy is in the top 1/rf of the results recorded
there, so a cheap network that is a little less accurate is stopped even when it is exactly the
trade-off the search is after. MO-ASHA (Schmucker et al. 2021, "Multi-objective Asynchronous
Successive Halving"; Syne Tune's `MOASHA`) ranks the rung by every objective of the search:

- **priority**: non-dominated rank first (0 = the rung's Pareto front, 1 = the front once the
  first is removed, ...), then, within a rank, NSGA-II's crowding distance (larger first, the
  front's extremes infinite), so the promoted part of a front stays spread along it;
- **promotion**: a trial reaching a rung with `n` valid results (itself included) continues iff
  fewer than `n / rf` of the others are strictly ahead of it in that priority. The first result
  at a rung therefore always continues and, with one result recorded, a second one only if
  nothing beats it: Ray's ASHA (whose cutoff is the (1 - 1/rf) percentile of the results
  already recorded) decides those cases the same way. For larger rungs Ray interpolates between
  recorded values; this rule counts positions, so "top 1/rf" is exact in ranks.
- **NaN**: a result with NaN (or None) in an objective cannot be ranked: it is stopped and never
  counts in a rung. (Ray's ASHA lets it through, since `nan < cutoff` is False.) A result
  without the time attribute or an objective key is no decision (CONTINUE), as in Ray.

Rungs are Ray's: `grace_period * rf**k <= max_t`, and a trial reaching `max_t` is stopped. The
rule is the pure function `promote`, tested on hand-made rungs; the scheduler only keeps the
rungs and asks it.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
from ray.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

from nas.errors import NasError
from nas.pareto import oriented, pareto_mask

__all__ = ["MultiObjectiveASHA", "promote", "priority", "nondominated_rank", "crowding_distance",
           "rung_milestones"]


def nondominated_rank(values, directions: Sequence[str] | None = None) -> np.ndarray:
    """Front index per row: 0 for the non-dominated rows, 1 for those non-dominated once front 0 is
    removed, and so on. Rows with a NaN come after every front (rank = number of fronts)."""
    v = oriented(values, directions)
    n = len(v)
    ranks = np.full(n, -1, dtype=int)
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
    """NSGA-II crowding distance of each row within the given set (one front): per objective, the
    gap between its two neighbours divided by the objective's range, summed; the rows at either
    end of any objective get infinity. Identical rows get the same distance (computed once)."""
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
    """(rank, crowding) per row: sort by rank ascending, then crowding descending. Crowding is
    computed within each rank's front; NaN rows get rank after every front and crowding 0."""
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
    """Does the result at `new_index` of this rung continue? The pure MO-ASHA rule.

    `rung_values` is n x k: every result recorded at the rung plus the new one (row `new_index`),
    one column per objective, oriented by `directions` ("max" / "min"; None: bigger is better
    everywhere). It continues iff fewer than `keep_fraction * n_valid` of the other valid rows are
    strictly ahead of it by (non-dominated rank, then crowding distance); a row with NaN never
    continues and rows with NaN do not count. `keep_fraction` is 1 / reduction_factor.
    """
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
    out, k = [], 0
    while grace_period * reduction_factor ** k <= max_t * (1 + 1e-9):
        out.append(grace_period * reduction_factor ** k)
        k += 1
    return out


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
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


class MultiObjectiveASHA(FIFOScheduler):
    """Asynchronous successive halving that promotes by non-dominated rank over all objectives.

    objectives: [(result key, "max" | "min")], e.g. [("val_acc", "max"), ("macs", "min")]; every
    result is expected to carry them all (cost objectives are constant per trial, reported each
    epoch). time_attr: the monotone progress key (the trainable's `epoch`). max_t: trials are
    stopped once time_attr reaches it. Rungs at grace_period * reduction_factor**k (see `promote`).
    """

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
        # descending milestones, each with {trial_id: [objective values]} and a promoted count
        self._rungs: list[tuple[float, dict[str, list[float]]]] = [
            (m, {}) for m in reversed(rung_milestones(grace_period, max_t, reduction_factor))]
        self._promoted: dict[float, int] = {m: 0 for m, _ in self._rungs}
        self._trials: set[str] = set()
        self._num_stopped = 0

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return list(self._objectives)

    def _decide(self, trial_id: str, t: float, values: list[float]) -> str:
        """Record the result at the highest rung it has reached and not yet been judged at."""
        for milestone, recorded in self._rungs:
            if t < milestone or trial_id in recorded:
                continue
            keep = self._decide_at(milestone, recorded, values)
            if not any(math.isnan(x) for x in values):
                recorded[trial_id] = values
            return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def _decide_at(self, milestone: float, recorded: dict[str, list[float]], values: list[float]) -> bool:
        rung = np.array([*recorded.values(), values], dtype=float).reshape(-1, len(self._objectives))
        keep = promote(rung, len(rung) - 1, 1.0 / self._rf, [d for _, d in self._objectives])
        self._promoted[milestone] += int(keep)
        return keep

    def on_trial_add(self, tune_controller, trial) -> None:
        self._trials.add(trial.trial_id)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if self._time_attr not in result or any(name not in result for name, _ in self._objectives):
            return TrialScheduler.CONTINUE
        t = float(result[self._time_attr])
        values = [_number(result[name]) for name, _ in self._objectives]
        if t >= self._max_t and self._stop_last_trials:
            action = TrialScheduler.STOP
        else:
            action = self._decide(trial.trial_id, t, values)
        if action == TrialScheduler.STOP:
            self._num_stopped += 1
        return action

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        """A finished (or stopped) trial's last result counts at the rung it reached, as in Ray."""
        if self._time_attr in result and all(name in result for name, _ in self._objectives):
            t = float(result[self._time_attr])
            values = [_number(result[name]) for name, _ in self._objectives]
            reached = [rec for m, rec in self._rungs if t >= m]  # highest first
            if reached and trial.trial_id not in reached[0] and not any(math.isnan(x) for x in values):
                reached[0][trial.trial_id] = values
        self._trials.discard(trial.trial_id)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._trials.discard(trial.trial_id)

    def debug_string(self) -> str:
        names = ", ".join(f"{n}:{d}" for n, d in self._objectives)
        rungs = " | ".join(f"{self._time_attr} {m:g}: {len(rec)} recorded, {self._promoted[m]} promoted"
                           for m, rec in reversed(self._rungs))
        return f"Using MultiObjectiveASHA ({names}): num_stopped={self._num_stopped}\n{rungs}"

    # JSON, not pickle: the project never unpickles (tests/test_faults.py scans for it)
    def save(self, checkpoint_path: str) -> None:
        state = {"rungs": [[m, rec] for m, rec in self._rungs],
                 "promoted": [[m, c] for m, c in self._promoted.items()],
                 "trials": sorted(self._trials), "num_stopped": self._num_stopped}
        with open(checkpoint_path, "w") as f:
            json.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            state = json.load(f)
        self._rungs = [(m, {k: [float(x) for x in v] for k, v in rec.items()}) for m, rec in state["rungs"]]
        self._promoted = {m: int(c) for m, c in state["promoted"]}
        self._trials = set(state["trials"])
        self._num_stopped = int(state["num_stopped"])


# ----------------------------------------------------------------------------- the search's choice

SCHEDULERS = ("auto", "moasha", "asha")


def scheduler_name(early_stopping: bool, asked: str, objectives: Sequence[Any],
                   budget_stops: bool = True) -> str:
    """moasha (promotion by non-dominated rank over every objective) for multi-objective
    searches, scalar asha on val_acc for one objective or when asked; none with --no-asha, and
    for `auto` at a budget that does not stop early (`Budget.early_stopping`)."""
    if asked not in SCHEDULERS:
        raise NasError(f"--scheduler {asked!r} must be {', '.join(SCHEDULERS)}")
    if not early_stopping:
        return "none"
    if asked == "auto":
        if not budget_stops:
            return "none"
        return "moasha" if len(objectives) > 1 else "asha"
    return asked


def make_scheduler(name: str, objectives: Sequence[Any], budget: Any) -> TrialScheduler:
    """The Tune scheduler `name` (see scheduler_name) on the budget's rungs (epochs)."""
    from ray.tune.schedulers import ASHAScheduler

    rungs = {"time_attr": "epoch", "max_t": budget.epochs, "grace_period": budget.grace_epochs,
             "reduction_factor": budget.reduction_factor}
    if name == "moasha":
        return MultiObjectiveASHA(objectives=objectives, **rungs)
    if name == "asha":
        return ASHAScheduler(metric="val_acc", mode="max", **rungs)
    return FIFOScheduler()
