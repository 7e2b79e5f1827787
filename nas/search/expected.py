"""The points a fresh search is expected to train, for its start-up estimate. First the references and
the random start its sampler really draws (its sampler and seed, asked through the same searcher on an
in-memory study, free samples included); after that picks depend on accuracies not measured yet, so a
later trial counts at the mean of a seeded sample of feasible candidates times `LATER_DRIFT`."""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from nas.blocks import Cost
from nas.counting import count
from nas.errors import NasError
from nas.search.searcher import OBSERVE_FREE, SAMPLERS, OptunaSearcher, nsga2_population
from nas.search.session import RunningSearch, queue_references
from nas.search.trial import SPEC_KEY
from nas.space import RandomChooser
from nas.spec import NetSpec

STARTUP_ASKS = 10  # the random start of ehvi (KnownCostSampler.n_startup), Optuna's GP and TPE
POOL_POINTS = 200  # the seeded sample of feasible candidates: the later trials' mean
# A later trial's seconds over the pool's mean: ehvi's picks replayed on the stand-in (10 seeds x 50
# trials, 2 at a time; benchmarks/time_model_check.py --replay): 1.20x (without the seconds: 1.49x;
# its 50 trials cost 1.39x random ones there, 1.33x in benchmarks/results/search_50). Others: 1.0
LATER_DRIFT = {"ehvi": 1.20}


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
    out = []
    for seed in range(4 * POOL_POINTS):
        try:
            spec = s.to_spec(s.space.sample(RandomChooser(seed)))
            counted = count(spec)
        except NasError:
            continue
        if max(s.limits.violations(counted.macs, counted.params)) <= 0:
            out.append((spec, counted.cost))
            if len(out) == POOL_POINTS:
                break
    return out
