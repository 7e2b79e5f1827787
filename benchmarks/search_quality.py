"""Which search finds the better accuracy/MACs front for the same compute? Methods vs random.

`--table` (the evidence; minutes, no training): every method searches the `shufflenet` space
replayed on a measured table of it (`benchmarks/space_table.py`: architectures trained at the
`cpu` search budget with two training seeds; benchmarks/data/README.md). The search sees one
seed's val_acc; the front it reports (its completed trials non-dominated in that val_acc and
MACs, as `nas search` reports it) is scored on the OTHER seed's test_acc, so a lucky validation
score earns nothing. Samplers are restricted to the table's architectures: `random` and `ehvi`
take it as their candidate set (a point off the table is a free sample, drawn again; ehvi's
candidates are the table's), the others cannot, so each of their proposals is trained as the
nearest table architecture (the output says which). Each search starts with the space's
references and the same 10 random table architectures per seed, for every method (paired
seeds). Clocks: equal trials (20, 50: --trials), and equal training seconds from the table (the
seconds random search spends on that many trials on average). Score: hypervolume (HV) in
test_acc (max) x log10 MACs (min) from fixed reference points: the worst test_acc of the table
and 25M MACs (the cpu budget's limit), and accuracy 0.1. Per method: the mean HV and the paired
ratio to random (mean over mean) with a 95% bootstrap interval over seeds; the last line is
`hv_ratio_vs_random=R ci95=[LO,HI] seeds=N clock=seconds` (the default method, the largest
trial count, the worst-of-table reference). Methods by default: random, ehvi (the default
sampler), tpe, nsga2, and ehvi / random with MO-ASHA (a rung at epoch 1); Optuna's GP sampler
only when asked (`--methods ... gp`: about 30 CPU-seconds a 50-trial search).

`--stand-in` (a fast plumbing test, not evidence): the same loop against a stand-in objective, a
ridge model of the learning curves in `benchmarks/data/shufflenet_curves.csv` plus gaussian
noise (`benchmarks/stand_in.py`). Its truth is a linear model of the features ehvi's surrogate
uses, so it shows that the searches run and spend equal compute (epochs), not which one is
better. Methods (`--methods`): a sampler (`nas.search.searcher.SAMPLERS`), with `+moasha` /
`+asha` its trials are stopped early by `nas.search.scheduler.promote` at rungs grace * rf**k.

Both drive the product's own searcher (`nas.search.searcher.OptunaSearcher`: the same asks and
the same FAIL / constraint / duplicate telling as `nas search`) on an in-memory study; with
--concurrency k a trial's outcome reaches the sampler k - 1 asks later, as k trials side by side.
One search per method and seed runs until every clock is spent; the shorter clocks are its
prefixes (what a shorter search with the same seed would have asked).

    python benchmarks/search_quality.py --table --seeds 50            # < 20 min on 2 cores
    python benchmarks/search_quality.py --table my_table.csv --seeds 5 --trials 20
    python benchmarks/search_quality.py --stand-in --quick --seeds 2   # plumbing: seconds
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the sibling benchmark modules, also when loaded by path (tests)
    sys.path.insert(0, str(HERE))

import stand_in  # noqa: E402
from stand_in import CURVES, StandIn, feasible_points, read_curves  # noqa: E402, F401

SPACE = "shufflenet"
BASELINE = "random"


@dataclass(frozen=True)
class Method:
    name: str
    sampler: str  # a nas.search.searcher.SAMPLERS key
    scheduler: str | None  # moasha | asha | None (every trial to the full budget)


METHODS = (Method("ehvi+moasha", "ehvi", "moasha"), Method("ehvi", "ehvi", None),
           Method("gp+moasha", "gp", "moasha"), Method("nsga2+moasha", "nsga2", "moasha"),
           Method("nsga2+asha", "nsga2", "asha"), Method("tpe+moasha", "tpe", "moasha"),
           Method("random+moasha", "random", "moasha"), Method("gp", "gp", None),
           Method("tpe", "tpe", None), Method("nsga2", "nsga2", None), Method("random", "random", None))


def default_method() -> str:
    """The method `nas search` runs by default at the cpu budget: its default sampler, with
    MO-ASHA if the budget stops early."""
    from nas.campaign.budget import get_budget
    from nas.pareto import parse_objectives
    from nas.search.plan import SearchPlan
    from nas.search.searcher import pick_sampler
    from nas.space import load_space

    plan = SearchPlan(space=SPACE)
    sampler = pick_sampler(plan.sampler, parse_objectives(plan.objectives), load_space(SPACE))
    return f"{sampler}+moasha" if get_budget("search", "cpu").early_stopping else sampler


# ----------------------------------------------------------------------------- one search

@dataclass(frozen=True)
class Observation:
    """What training a point gives: `key` names the architecture actually trained."""

    key: str
    curve: np.ndarray  # val_acc after each epoch, as the search sees it
    worth: float  # what it is scored on (noise-free val_acc, or the other seed's test_acc)
    epoch_cost: list[float]  # clock units of each epoch (1: epochs; seconds from a table)


@dataclass
class Trial:
    key: str
    macs: float
    observed: float  # the last val_acc the search saw
    worth: float
    completed: bool
    start: float  # the clock when it started
    ends: list[float]  # the clock after each epoch it ran


@dataclass
class Spent:
    """A search cut at one clock."""

    trained: int = 0
    completed: int = 0
    pruned: int = 0
    epochs: int = 0
    infeasible: int = 0
    duplicates: int = 0
    stuck: bool = False
    front_points: list = field(default_factory=list)  # [(worth, observed, macs)] of completed trials


@dataclass(frozen=True)
class Clock:
    kind: str  # trials | cost
    amount: float
    label: str = ""


@dataclass
class Run:
    trials: list[Trial] = field(default_factory=list)
    infeasible: int = 0  # invalid or over max_macs (or off the table): no compute
    duplicates: int = 0  # already trained: no compute
    stuck: bool = False  # the searcher gave up (too many free samples in a row)

    def at(self, clock: Clock) -> Spent:
        """What the search had done when `clock` ran out: the first N trials, or every epoch that
        ended within the cost (a trial cut mid-way counts as pruned)."""
        out = Spent(infeasible=self.infeasible, duplicates=self.duplicates, stuck=self.stuck)
        for n, t in enumerate(self.trials):
            if (clock.kind == "trials" and n >= clock.amount) or (clock.kind == "cost" and t.start >= clock.amount):
                break
            ran = len(t.ends) if clock.kind == "trials" else sum(e <= clock.amount + 1e-9 for e in t.ends)
            out.trained, out.epochs = out.trained + 1, out.epochs + ran
            if t.completed and ran == len(t.ends):
                out.completed += 1
                out.front_points.append((t.worth, t.observed, t.macs))
            else:
                out.pruned += 1
        return out


def _searcher(method: Method, outcomes: Any, seed: int, planned: int, max_macs: float, run: Run,
              queued: list[tuple[str | None, dict[str, Any]]]):
    """The product's own searcher on an in-memory study, `queued` points asked first (the
    space's references, as `nas search` does; a replay's shared start-up)."""
    import optuna

    from nas.pareto import Objective
    from nas.search.searcher import OBSERVE_FREE, SAMPLERS, Limits, OptunaSearcher

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=SAMPLERS[method.sampler](seed, planned))
    for name, point in queued:
        study.enqueue_trial(point, user_attrs={"reference": name} if name else {})

    def on_free(sampled) -> None:
        if sampled.duplicate_of is None:
            run.infeasible += 1
        else:
            run.duplicates += 1

    return OptunaSearcher(study, outcomes.space, [Objective("val_acc", "max"), Objective("macs", "min")],
                          to_spec=outcomes.to_spec, limits=Limits(max_macs=max_macs),
                          max_epochs=outcomes.epochs, trials=10 ** 9, on_infeasible=on_free,
                          observe_free=method.sampler in OBSERVE_FREE)


def _rungs(method: Method, grace: int, rf: int, max_epochs: int) -> list[int]:
    from nas.search.scheduler import rung_milestones

    if not method.scheduler:
        return []
    return [int(m) for m in rung_milestones(grace, max_epochs, rf) if m < max_epochs]


def _train(obs: Observation, macs: float, method: Method, milestones: list[int], rungs: dict,
           rf: int, clock: float) -> Trial:
    """Run one trial through the rungs (`nas.search.scheduler.promote` decides each)."""
    from nas.search.scheduler import promote

    directions = ["max", "min"] if method.scheduler == "moasha" else ["max"]
    epochs, ends = len(obs.curve), []
    for stop in [*milestones, epochs]:
        while len(ends) < stop:
            ends.append((ends[-1] if ends else clock) + obs.epoch_cost[len(ends)])
        if stop == epochs:
            break
        column = [float(obs.curve[stop - 1]), macs][:len(directions)]
        keep = promote(np.array([*rungs[stop], column]), len(rungs[stop]), 1.0 / rf, directions)
        rungs[stop].append(column)
        if not keep:
            break
    reached = len(ends)
    return Trial(obs.key, macs, float(obs.curve[reached - 1]), obs.worth, reached == epochs, clock, ends)


def simulate(method: Method, outcomes: Any, seed: int, *, limit: float, min_trials: int = 0,
             grace: int = 1, rf: int = 2, max_macs: float = 25e6,
             queued: list[tuple[str | None, dict[str, Any]]] = (), concurrency: int = 1) -> Run:
    """One search with `method` until `limit` clock units are spent and `min_trials` trained.

    `outcomes` gives what training a point yields: `space`, `epochs`, `to_spec(point)` (raises
    SpecError off its candidates), `observe(point, rng) -> Observation`. A point whose trained
    architecture (`Observation.key`) this search already has is a free duplicate, told the
    earlier values at once."""
    from nas.errors import SpecError
    from nas.search.trial import COSTS_KEY, SPEC_KEY, TRIAL_KEY

    run = Run()
    planned = max(1, min_trials)
    searcher = _searcher(method, outcomes, seed, planned, max_macs, run, list(queued))
    milestones = _rungs(method, grace, rf, outcomes.epochs)
    rungs: dict[int, list[list[float]]] = {m: [] for m in milestones}
    rng = np.random.default_rng([seed, [m.name for m in METHODS].index(method.name)])
    in_flight: list[tuple[str, dict[str, float]]] = []
    told: dict[str, dict[str, float]] = {}
    spent, asked, free_in_a_row = 0.0, 0, 0
    while spent < limit or len(run.trials) < min_trials:
        trial_id, asked = str(asked), asked + 1
        try:
            config = searcher.suggest(trial_id)
        except SpecError:  # the real searcher's "too many free samples in a row"
            run.stuck = True
            break
        point = {k: v for k, v in config.items() if k not in (TRIAL_KEY, SPEC_KEY, COSTS_KEY)}
        obs = outcomes.observe(point, rng)
        if obs.key in told:  # a mapped proposal landed on an architecture trained already
            run.duplicates, free_in_a_row = run.duplicates + 1, free_in_a_row + 1
            searcher.on_trial_complete(trial_id, told[obs.key])
            if free_in_a_row >= 500:
                run.stuck = True
                break
            continue
        free_in_a_row = 0
        trial = _train(obs, float(config[COSTS_KEY]["macs"]), method, milestones, rungs, rf, spent)
        run.trials.append(trial)
        spent = trial.ends[-1]
        told[obs.key] = {"val_acc": trial.observed, "macs": trial.macs, "epoch": len(trial.ends)}
        in_flight.append((trial_id, told[obs.key]))
        while len(in_flight) >= concurrency:
            searcher.on_trial_complete(*in_flight.pop(0))
    return run


# ----------------------------------------------------------------------------- the score

@dataclass(frozen=True)
class Score:
    """Hypervolume in (accuracy max, log10 MACs min) from a stated reference point.

    Why log MACs: the space's costs span 15x and efficient-CNN results are read on a log axis
    (a 2M-MAC net that is 1 point better matters as much as a 20M one)."""

    reference_acc: float
    max_macs: float

    def hv(self, points: list[tuple[float, float]]) -> float:
        from nas.pareto import hypervolume

        if not points:
            return 0.0
        values = np.array([[acc, math.log10(macs)] for acc, macs in points])
        return hypervolume(values, ["max", "min"], [self.reference_acc, math.log10(self.max_macs)])

    def front(self, points: list[tuple[float, float, float]]) -> float:
        """The HV of the front a search reports, chosen on what it saw (`observed`), valued at
        what those architectures are worth: points are (worth, observed, macs)."""
        from nas.pareto import pareto_mask

        if not points:
            return 0.0
        mask = pareto_mask(np.array([[o, m] for _, o, m in points]), ["max", "min"])
        return self.hv([(w, m) for (w, _, m), keep in zip(points, mask) if keep])

    def describe(self, what: str = "val_acc") -> str:
        return (f"HV in {what} x log10(MACs), reference point ({what} {self.reference_acc:.4f},"
                f" {self.max_macs / 1e6:g}M MACs)")


# ----------------------------------------------------------------------------- many searches

_SHARED: dict[str, Any] = {}  # the outcomes, inherited by forked workers (not pickled per task)


def _one(task: tuple[str, int, dict[str, Any]]) -> tuple[str, int, Run]:
    import torch

    torch.set_num_threads(1)  # one core per worker: Optuna's GP fits in torch
    name, seed, kw = task
    method = next(m for m in METHODS if m.name == name)
    outcomes = _SHARED["outcomes"](method, seed)
    return name, seed, simulate(method, outcomes, seed, queued=_SHARED["queued"](seed), **kw)


def simulate_all(methods: list[Method], outcomes: Callable[[Method, int], Any], queued: Callable[[int], list],
                 seeds: int, workers: int, **kw: Any) -> dict[tuple[str, int], Run]:
    """Every method x seed, `workers` at a time (forked processes), slowest methods first;
    `outcomes(method, seed)` and `queued(seed)` give each search its truth and its first points."""
    import multiprocessing

    slow = ("gp", "ehvi")  # their asks fit a GP: start them first so the pool ends together
    order = sorted(methods, key=lambda m: m.sampler not in slow)
    tasks = [(m.name, seed, kw) for m in order for seed in range(seeds)]
    _SHARED.update(outcomes=outcomes, queued=queued)
    done: dict[tuple[str, int], Run] = {}
    left = {m.name: seeds for m in methods}
    if workers <= 1:
        for name, seed, run in map(_one, tasks):
            done[name, seed] = run
        return done
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for name, seed, run in pool.imap_unordered(_one, tasks):
            done[name, seed] = run
            left[name] -= 1
            if not left[name]:
                print(f"  {name}: {seeds} seeds done", flush=True)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--table", nargs="?", const="", metavar="CSV",
                      help="replay on a space table (default benchmarks/data/shufflenet_table.csv)")
    mode.add_argument("--stand-in", action="store_true", help="plumbing test on a stand-in objective")
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--trials", default="20,50", help="--table: the equal-trials clocks")
    parser.add_argument("--methods", nargs="+", choices=[m.name for m in METHODS],
                        help="default: --table random, ehvi, tpe, nsga2, ehvi+moasha, random+moasha"
                           " (gp: ~25 CPU-min more at 50 seeds), --stand-in all")
    parser.add_argument("--max-macs", type=float, help="default: the cpu budget's (25e6)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="trials at once, the sampler told each outcome that much later"
                             " (default 2: what `nas search` runs on a 2-core machine)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="simulations at once (default: every core)")
    parser.add_argument("--curves", default=str(CURVES), help="--stand-in: the curves table")
    parser.add_argument("--curves-budget", default="cpu", help="--stand-in: the curves' budget")
    parser.add_argument("--curves-epochs", type=int, default=0,
                        help="--stand-in: cut the curves after this epoch (0: keep them whole)")
    parser.add_argument("--epochs", type=int, help="--stand-in: epochs per search (default: 50 trials' worth)")
    parser.add_argument("--quick", action="store_true", help="--stand-in: 12 trials' worth (CI)")
    parser.add_argument("--no-references", action="store_true",
                        help="--stand-in: do not queue the space's reference nets first")
    args = parser.parse_args(argv)
    if args.stand_in:
        stand_in.run(args)
    else:
        from table_replay import replay

        replay(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
