"""What a search will sample, known before it starts: a size limit no architecture meets is refused,
and the points a fresh search is expected to train give its estimate: the references and the random
start its sampler really draws (same sampler, seed and searcher on an in-memory study); later picks
depend on accuracies not measured yet, so they count at a seeded feasible sample's mean x `LATER_DRIFT`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import optuna

from nas.blocks import Cost
from nas.counting import count
from nas.errors import NasError
from nas.search.searcher import OBSERVE_FREE, SAMPLERS, Limits, OptunaSearcher, nsga2_population
from nas.search.session import RunningSearch, queue_references
from nas.search.trial import SPEC_KEY
from nas.space import RandomChooser
from nas.spec import NetSpec
from nas.table import millions

STARTUP_ASKS = 10  # the random start of ehvi (KnownCostSampler.n_startup), Optuna's GP and TPE
POOL_POINTS = 200  # the seeded sample of feasible candidates: the later trials' mean
# A later trial's seconds over the pool's mean: ehvi's picks replayed on the stand-in (10 seeds x 50
# trials, 2 at a time; benchmarks/time_model_check.py --replay): 1.20x (without the seconds: 1.49x;
# its 50 trials cost 1.39x random ones there, 1.33x in benchmarks/results/search_50). Others: 1.0
LATER_DRIFT = {"ehvi": 1.20}
PROBES = 200  # random archs counted to refuse an unreachable limit (milliseconds each: no network runs)


@dataclass(frozen=True)
class Expected:
    planned: tuple[tuple[NetSpec, Cost], ...]  # the first trials, in the order they are asked
    pool: tuple[tuple[NetSpec, Cost], ...]  # feasible candidates: what a later trial may be
    drift: float = 1.0  # a later trial's seconds over the pool's mean (LATER_DRIFT)


def expected_points(s: RunningSearch, concurrency: int) -> Expected:
    """The first trials of a fresh search (none when resumed) and the candidates of the rest."""
    planned = () if s.settings.resume else tuple(_startup(s, concurrency))
    return Expected(planned, tuple(_pool(s)), LATER_DRIFT.get(s.plan.sampler, 1.0))


def _random_asks(s: RunningSearch, concurrency: int) -> int:
    """Asks before the sampler uses a result: its random start, plus those while its last trials run."""
    name, trials = s.plan.sampler, s.plan.trials
    asks = {"random": trials, "nsga2": nsga2_population(trials)}.get(name, STARTUP_ASKS + concurrency - 1)
    return min(trials, asks)


def _startup(s: RunningSearch, concurrency: int) -> list[tuple[NetSpec, Cost]]:
    directions = ["maximize" if o.direction == "max" else "minimize" for o in s.objectives]
    study = optuna.create_study(directions=directions,
                                sampler=SAMPLERS[s.plan.sampler](s.plan.seed, s.plan.trials))
    queue_references(s, study)  # first, as the search queues them
    asks = _random_asks(s, concurrency)
    searcher = OptunaSearcher(study, s.space, s.objectives, to_spec=s.to_spec, limits=s.limits,
                              max_epochs=s.budget.epochs, trials=asks, on_infeasible=lambda sampled: None,
                              observe_free=s.plan.sampler in OBSERVE_FREE)
    out = []
    try:
        for i in range(asks):
            spec = searcher.suggest(str(i))[SPEC_KEY]
            out.append((spec, count(spec).cost))
    except NasError:  # the sampler cannot be asked here (objectives it refuses): the pool's mean
        pass
    return out


def _pool(s: RunningSearch) -> list[tuple[NetSpec, Cost]]:
    """Up to POOL_POINTS feasible points of the space, drawn uniformly with fixed seeds."""
    points = (s.space.sample(RandomChooser(seed)) for seed in range(4 * POOL_POINTS))
    feasible = ((spec, counted.cost) for spec, counted in _counted(s.to_spec, points)
                if max(s.limits.violations(counted.macs, counted.params)) <= 0)
    return list(itertools.islice(feasible, POOL_POINTS))


def _counted(to_spec: Callable[[dict[str, Any]], NetSpec], points: Iterable[dict[str, Any]]) -> Iterator[Any]:
    """(spec, its count) of each point that builds."""
    for point in points:
        try:
            spec = to_spec(point)
            counted = count(spec)
        except NasError:
            continue
        yield spec, counted


def check_reachable(space: Any, to_spec: Callable[[dict[str, Any]], NetSpec], limits: Limits,
                    probes: int = PROBES) -> None:
    """Refuse a max_macs / max_params that none of `probes` random archs (references first) meets, in one
    line with the smallest seen, not after hundreds of INFEASIBLE samples (`max_macs=1` took 84 s)."""
    if limits.max_macs is None and limits.max_params is None:
        return
    points = [point for _, point in space.references] + [space.sample(RandomChooser(seed)) for seed in range(probes)]
    sizes = []
    for _, counted in _counted(to_spec, points):
        if max(limits.violations(counted.macs, counted.params)) <= 0:
            return
        sizes.append((counted.macs, counted.params))
    seen = (f"; the smallest of {len(points)} sampled has {millions(min(sizes)[0])} MACs,"
            f" {millions(min(sizes)[1])} params" if sizes else "")
    limit = " and ".join(f"{k}={v:g}" for k, v in (("max_macs", limits.max_macs),
                                                   ("max_params", limits.max_params)) if v is not None)
    raise NasError(f"no architecture of space {space.name!r} meets {limit}{seen}; raise the limit")
